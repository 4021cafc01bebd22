"""Bad input to cconv's operators raises ValueError or TypeError, never crashes.

One table row per mistake: wrong ndim, channel / groups mismatches, kernels larger than the
padded input, non-positive stride / dilation / kernel, negative or unknown padding, pool
padding over half the kernel, non-float dtypes, mixed dtypes, wrong bias or grad_out shapes,
None arrays, and a non-positive lp norm_type. Each row names the call, the exception types,
and a regex the message must match (the argument at fault, and the problem where stable).
Absurd sizes must give MemoryError or ValueError.
"""
import numpy as np
import pytest

from cconv import functional as F

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 4, 8, 8)).astype(np.float32)          # conv and pool input
W = RNG.standard_normal((6, 4, 3, 3)).astype(np.float32)          # conv weight, groups=1
B = RNG.standard_normal(6).astype(np.float32)
G = np.ones((2, 6, 6, 6), np.float32)                             # conv grad_out, padding 0
POOL_G = np.ones((2, 4, 4, 4), np.float32)                        # pool grad_out for kernel 2

BAD = (ValueError, TypeError)


def conv_case(*args, **kwargs):
    return lambda: F.conv2d(*args, **kwargs)


def conv_backward_case(*args, **kwargs):
    return lambda: F.conv2d_backward(*args, **kwargs)


POOL_FORWARD = {
    "max": lambda x, k, **kw: F.max_pool2d(x, k, **kw),
    "avg": lambda x, k, **kw: F.avg_pool2d(x, k, **kw),
    "lp": lambda x, k, **kw: F.lp_pool2d(x, 2, k, **kw),
}
POOL_BACKWARD = {
    "max": lambda g, x, k, **kw: F.max_pool2d_backward(g, x, k, **kw),
    "avg": lambda g, x, k, **kw: F.avg_pool2d_backward(g, x, k, **kw),
    "lp": lambda g, x, k, **kw: F.lp_pool2d_backward(g, x, 2, k, **kw),
}

# id, call, expected exception types, regex the message must contain
CONV_TABLE = [
    # shapes
    ("x-3d", conv_case(X[0], W), ValueError, r"\bx\b"),
    ("x-5d", conv_case(X[None], W), ValueError, r"\bx\b"),
    ("weight-3d", conv_case(X, W[0]), ValueError, "weight"),
    ("channel-mismatch", conv_case(X, W[:, :3]), ValueError, "channel"),
    ("groups-not-dividing-C", conv_case(X, W[:, :1], groups=3), ValueError, "groups"),
    ("groups-not-dividing-K", conv_case(X, W[:5, :2], groups=2), ValueError, "groups"),
    ("groups-zero", conv_case(X, W, groups=0), ValueError, "groups"),
    ("groups-negative", conv_case(X, W, groups=-2), ValueError, "groups"),
    ("groups-float", conv_case(X, W, groups=1.0), TypeError, "groups"),
    ("kernel-larger-than-input", conv_case(X, np.ones((2, 4, 9, 3), np.float32)), ValueError, "kernel.*larger"),
    ("kernel-larger-than-padded-input", conv_case(X, np.ones((2, 4, 3, 11), np.float32), padding=1),
     ValueError, "kernel.*larger"),
    ("dilated-kernel-larger-than-input", conv_case(X, W, dilation=4), ValueError, "kernel.*larger"),
    ("kernel-zero-height", conv_case(X, np.ones((2, 4, 0, 3), np.float32)), ValueError, "kernel"),
    # stride, dilation, padding
    ("stride-zero", conv_case(X, W, stride=0), ValueError, "stride"),
    ("stride-negative", conv_case(X, W, stride=-1), ValueError, "stride"),
    ("stride-pair-zero", conv_case(X, W, stride=(1, 0)), ValueError, "stride"),
    ("stride-float", conv_case(X, W, stride=1.5), TypeError, "stride"),
    ("stride-string", conv_case(X, W, stride="2"), TypeError, "stride"),
    ("stride-triple", conv_case(X, W, stride=(1, 1, 1)), ValueError, "stride"),
    ("dilation-zero", conv_case(X, W, dilation=0), ValueError, "dilation"),
    ("dilation-negative", conv_case(X, W, dilation=(1, -2)), ValueError, "dilation"),
    ("padding-negative", conv_case(X, W, padding=-1), ValueError, "padding"),
    ("padding-pair-negative", conv_case(X, W, padding=(1, -1)), ValueError, "padding"),
    ("padding-asymmetric-negative", conv_case(X, W, padding=((0, -1), (0, 0))), ValueError, "padding"),
    ("padding-unknown-word", conv_case(X, W, padding="full"), ValueError, "padding"),
    ("padding-float", conv_case(X, W, padding=0.5), TypeError, "padding"),
    ("padding-none", conv_case(X, W, padding=None), BAD, "padding"),
    # dtypes
    ("x-int32", conv_case(X.astype(np.int32), W.astype(np.int32)), BAD, r"\bx\b"),
    ("x-int64", conv_case(X.astype(np.int64), W), BAD, r"\bx\b"),
    ("x-bool", conv_case(X > 0, W), BAD, r"\bx\b"),
    ("x-complex", conv_case(X.astype(np.complex128), W.astype(np.complex128)), BAD, r"\bx\b"),
    ("x-object", conv_case(X.astype(object), W.astype(object)), BAD, r"\bx\b"),
    ("x-float16", conv_case(X.astype(np.float16), W.astype(np.float16)), BAD, r"\bx\b"),
    ("weight-int", conv_case(X, W.astype(np.int32)), BAD, "weight"),
    ("x-f32-weight-f64", conv_case(X, W.astype(np.float64)), BAD, "dtype"),
    ("x-f64-weight-f32", conv_case(X.astype(np.float64), W), BAD, "dtype"),
    ("bias-f64", conv_case(X, W, B.astype(np.float64)), BAD, "bias"),
    ("bias-int", conv_case(X, W, B.astype(np.int64)), BAD, "bias"),
    # bias and grad_out shapes
    ("bias-too-short", conv_case(X, W, B[:5]), ValueError, "bias"),
    ("bias-too-long", conv_case(X, W, np.ones(7, np.float32)), ValueError, "bias"),
    ("bias-2d", conv_case(X, W, B[:, None]), ValueError, "bias"),
    ("grad_out-wrong-shape", conv_backward_case(G[:, :, :5], X, W), ValueError, "grad_out"),
    ("grad_out-wrong-channels", conv_backward_case(G[:, :5], X, W), ValueError, "grad_out"),
    ("grad_out-3d", conv_backward_case(G[0], X, W), ValueError, "grad_out"),
    ("grad_out-f64", conv_backward_case(G.astype(np.float64), X, W), BAD, "grad_out|dtype"),
    ("grad_out-int", conv_backward_case(G.astype(np.int32), X, W), BAD, "grad_out"),
    ("backward-x-f32-weight-f64", conv_backward_case(G, X, W.astype(np.float64)), BAD, "dtype"),
    ("backward-groups-not-dividing-C", conv_backward_case(G, X, W[:, :1], groups=3), ValueError, "groups"),
    ("backward-stride-zero", conv_backward_case(G, X, W, stride=0), ValueError, "stride"),
    # None
    ("x-none", conv_case(None, W), BAD, r"\bx\b"),
    ("weight-none", conv_case(X, None), BAD, "weight"),
    ("backward-grad_out-none", conv_backward_case(None, X, W), BAD, "grad_out"),
    ("backward-x-none", conv_backward_case(G, None, W), BAD, r"\bx\b"),
    ("backward-weight-none", conv_backward_case(G, X, None), BAD, "weight"),
]


def pool_table(op):
    forward, backward = POOL_FORWARD[op], POOL_BACKWARD[op]
    rows = [
        ("x-3d", lambda: forward(X[0], 2), ValueError, r"\bx\b"),
        ("x-5d", lambda: forward(X[None], 2), ValueError, r"\bx\b"),
        ("kernel-zero", lambda: forward(X, 0), ValueError, "kernel"),
        ("kernel-negative", lambda: forward(X, -2), ValueError, "kernel"),
        ("kernel-pair-zero", lambda: forward(X, (2, 0)), ValueError, "kernel"),
        ("kernel-none", lambda: forward(X, None), BAD, "kernel"),
        ("kernel-float", lambda: forward(X, 2.0), TypeError, "kernel"),
        ("kernel-larger-than-input", lambda: forward(X, (9, 2)), ValueError, "kernel.*larger"),
        ("stride-zero", lambda: forward(X, 2, stride=0), ValueError, "stride"),
        ("stride-negative", lambda: forward(X, 2, stride=(1, -1)), ValueError, "stride"),
        ("x-int", lambda: forward(X.astype(np.int32), 2), BAD, r"\bx\b"),
        ("x-bool", lambda: forward(X > 0, 2), BAD, r"\bx\b"),
        ("x-complex", lambda: forward(X.astype(np.complex64), 2), BAD, r"\bx\b"),
        ("x-object", lambda: forward(X.astype(object), 2), BAD, r"\bx\b"),
        ("x-none", lambda: forward(None, 2), BAD, r"\bx\b"),
        ("grad_out-none", lambda: backward(None, X, 2), BAD, "grad_out"),
        ("backward-x-none", lambda: backward(POOL_G, None, 2), BAD, r"\bx\b"),
        ("grad_out-wrong-shape", lambda: backward(POOL_G[:, :, :3], X, 2), ValueError, "grad_out"),
        ("grad_out-wrong-channels", lambda: backward(POOL_G[:, :3], X, 2), ValueError, "grad_out"),
        ("grad_out-3d", lambda: backward(POOL_G[0], X, 2), ValueError, "grad_out"),
        ("grad_out-f64", lambda: backward(POOL_G.astype(np.float64), X, 2), BAD, "grad_out|dtype"),
        ("grad_out-int", lambda: backward(POOL_G.astype(np.int64), X, 2), BAD, "grad_out"),
        ("backward-kernel-zero", lambda: backward(POOL_G, X, 0), ValueError, "kernel"),
        ("ceil_mode-string", lambda: forward(X, 2, ceil_mode="yes"), TypeError, "ceil_mode"),
        ("empty-height", lambda: forward(X[:, :, :0], 1), ValueError, r"\bx\b|kernel"),
    ]
    if op != "lp":  # lp_pool2d takes no padding
        rows += [
            ("padding-negative", lambda: forward(X, 2, padding=-1), ValueError, "padding"),
            ("padding-over-half-kernel", lambda: forward(X, 3, padding=2), ValueError, "padding.*half"),
            ("padding-pair-over-half-kernel", lambda: forward(X, (4, 2), padding=(2, 2)), ValueError, "padding.*half"),
            ("backward-padding-over-half-kernel", lambda: backward(POOL_G, X, 2, padding=2), ValueError,
             "padding.*half"),
        ]
    else:
        rows += [
            ("norm-type-none", lambda: F.lp_pool2d(X, None, 2), TypeError, "norm_type"),
            ("norm-type-string", lambda: F.lp_pool2d(X, "2", 2), TypeError, "norm_type"),
            ("norm-type-zero", lambda: F.lp_pool2d(X, 0, 2), ValueError, "norm_type"),
            ("norm-type-negative", lambda: F.lp_pool2d(X, -2.0, 2), ValueError, "norm_type"),
            ("backward-norm-type-zero", lambda: F.lp_pool2d_backward(POOL_G, X, 0, 2), ValueError, "norm_type"),
        ]
    return [pytest.param(call, error, match, id=f"{op}-{name}") for name, call, error, match in rows]


TABLE = ([pytest.param(call, error, match, id="conv-" + name) for name, call, error, match in CONV_TABLE]
         + pool_table("max") + pool_table("avg") + pool_table("lp"))


@pytest.mark.parametrize("call, error, match", TABLE)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("padding", [2**20, (0, 2**20), ((2**20, 2**20), (2**20, 2**20))],
                         ids=["int", "pair", "asymmetric"])
def test_absurd_conv_padding_gives_memory_or_value_error(padding):
    """A petabyte-sized output cannot be allocated on any machine: a clean error, not a crash."""
    x = np.ones((8, 1, 4, 4), np.float64)
    weight = np.ones((64, 1, 1, 1), np.float64)
    with pytest.raises((MemoryError, ValueError)):
        F.conv2d(x, weight, padding=padding)


@pytest.mark.parametrize("call", [
    lambda: F.conv2d(X, W, padding=2**40),
    lambda: F.conv2d(X, W, padding=((0, 2**40), (0, 0))),
    lambda: F.conv2d(X, W, dilation=2**40),
    lambda: F.conv2d(X, W, groups=2**40),
    lambda: F.max_pool2d(X, 2**40),
    lambda: F.lp_pool2d(X, 2, (2, 2**40)),
], ids=["conv-padding", "conv-padding-asymmetric", "conv-dilation", "conv-groups", "max-kernel",
        "lp-kernel"])
def test_huge_arguments_raise(call):
    with pytest.raises((MemoryError, ValueError)):
        call()
