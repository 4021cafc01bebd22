"""Property-based tests (Hypothesis): every operator, forward and backward, against the NumPy
references in tests/reference.py over drawn arguments.

Each example draws the shapes, strides, paddings (int, pair, list, ((top, bottom), (left,
right)), 'valid', 'same' with any stride), dilations, groups (ordinary, grouped, depthwise),
dtype, kind of values (normal, small integers with many ties, positive), memory layout of
every array (C, Fortran, strided view, negative strides, big-endian, read-only), thread count,
GEMM micro-kernels (every SIMD path this CPU runs) and, for convolutions, the algorithm of each
pass ('auto' or any that F.conv_algorithms says applies, forced by name). It checks that
  * the result matches the reference within the dtype's tolerance (assert_close),
  * the inputs are not modified, and
  * the result is bitwise the one for C-contiguous native copies of the inputs.
Hypothesis profiles (tests/hypothesis_profiles.py): 'ci' by default, 'nightly' with
CCONV_HYPOTHESIS_PROFILE=nightly. No example has failed so far (the nightly profile's 10,000
included); a failure that Hypothesis finds and shrinks is to be kept as an @example row of its
test.
"""
import contextlib

import numpy as np
from hypothesis import given, note, strategies as st

import hypothesis_profiles  # noqa: F401  (registers and loads the settings profile)
import reference as ref
from reference import assert_close, call_unmodified

import cconv
from cconv import _conv, functional as F

DTYPES = [np.float32, np.float64]
LAYOUTS = ["C", "fortran", "strided", "negative-strides", "big-endian", "read-only"]


# ----------------------------------------------------------------------------- helpers

def with_layout(a, layout):
    """An array equal to the C-ordered `a` in the given memory layout (non-arrays unchanged)."""
    if layout == "C" or not isinstance(a, np.ndarray):
        return a
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":  # every other element of a NaN-filled base, along every axis
        base = np.full(tuple(2 * size for size in a.shape), np.nan, a.dtype)
        view = base[(slice(None, None, 2),) * a.ndim]
        view[...] = a
        return view
    if layout == "negative-strides":  # first and last axes reversed
        back = slice(None, None, -1)
        flip = (back,) if a.ndim == 1 else (back, ..., back)
        return a[flip].copy()[flip]
    if layout == "big-endian":
        return a.astype(a.dtype.newbyteorder(">"))
    assert layout == "read-only"
    a = a.copy()
    a.setflags(write=False)
    return a


def supported_simd_paths():
    """The GEMM micro-kernel paths that are built and that this CPU can run."""
    current = _conv.simd_path()[0]
    paths = []
    for isa in _conv.simd_paths_built():
        try:
            _conv.force_simd_path(isa)
        except ValueError:
            continue
        paths.append(isa)
    _conv.force_simd_path(current)
    return paths


SIMD_PATHS = supported_simd_paths()


@contextlib.contextmanager
def running(threads, isa=None):
    """Run the body with `threads` kernel threads and the `isa` micro-kernels (None: the current
    ones), then restore both."""
    before = _conv.simd_path()[0]
    cconv.set_num_threads(threads)
    _conv.force_simd_path(isa or before)
    try:
        yield
    finally:
        _conv.force_simd_path(before)
        cconv.set_num_threads(None)


def values(rng, shape, kind, dtype):
    """Random values: 'normal', 'integers' (-3..3: exact sums, many ties) or 'positive'."""
    if kind == "integers":
        data = rng.integers(-3, 4, shape)
    elif kind == "positive":
        data = np.abs(rng.standard_normal(shape)) + 0.1
    else:
        data = rng.standard_normal(shape)
    return data.astype(dtype)


def check_op(function, arrays, layouts, kwargs, expected, dtype, what, array_kwargs=None):
    """function(*arrays, **kwargs, **array_kwargs), with every array (the positional ones, then
    the keyword ones) in the memory layout that `layouts` gives for it (C where it gives none),
    matches the tuple of reference results `expected` (None where the result must be None),
    leaves its inputs unmodified, and equals its result for C-contiguous native inputs."""
    names = list(array_kwargs or {})
    inputs = list(arrays) + [array_kwargs[name] for name in names]
    split = len(inputs) - len(names)

    def call(*given):
        result = function(*given[:split], **kwargs, **dict(zip(names, given[split:])))
        return result if isinstance(result, tuple) else (result,)

    layouts = list(layouts) + ["C"] * (len(inputs) - len(layouts))  # non-arrays, e.g. norm_type
    got = call_unmodified(call, *[with_layout(a, layout) for a, layout in zip(inputs, layouts)])
    plain = call(*inputs)
    for i, (g, p, e) in enumerate(zip(got, plain, expected)):
        if e is None:
            assert g is None and p is None, f"{what}[{i}]: expected None"
            continue
        assert_close(g, e, dtype, f"{what}[{i}]")
        assert np.array_equal(g, p, equal_nan=True), f"{what}[{i}]: layouts {layouts} changed the result"


# ----------------------------------------------------------------------------- strategies

def int_or_pair(low, high):
    """An int, an (h, w) tuple or an [h, w] list of ints in [low, high]."""
    one = st.integers(low, high)
    pair = st.tuples(one, one)
    return st.one_of(one, pair, pair.map(list))


LAYOUT = st.sampled_from(LAYOUTS)
COMMON = dict(dtype=st.sampled_from(DTYPES), kind=st.sampled_from(["normal", "integers"]),
              threads=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))


# Size classes: most cases are small; the others cross the C kernels' blockings (reductions
# 256 deep over C*R*S, K or output pixels; 384-column blocks; 1024-row grad-input blocks; the
# max-pool backward's 64-output chunks), and "panels" fills the pixel micro-kernel's panels of
# 32 filters with enough channels for the stride-1 path. Hypothesis favours small integers, so
# the large classes draw from ranges that start past the blocking sizes.
SIZES = st.sampled_from(["small", "small", "small", "many-channels", "many-filters", "panels", "large-image"])


@st.composite
def conv_cases(draw):
    """(x shape, weight shape, kwargs) of one conv2d call whose kernel fits the padded input."""
    size = draw(SIZES)
    kind = "one" if size.startswith("many") else draw(st.sampled_from(["one", "grouped", "depthwise"]))
    if size == "panels":
        groups, c_per_group, k_per_group = draw(st.integers(1, 2)), draw(st.integers(8, 40)), draw(st.integers(26, 70))
    elif kind == "one":
        groups = 1
        c_per_group = draw(st.integers(257, 300) if size == "many-channels" else st.integers(1, 4))
        k_per_group = draw(st.integers(257, 300) if size == "many-filters" else st.integers(1, 6))
    elif kind == "grouped":
        groups = draw(st.integers(2, 4))
        c_per_group, k_per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:  # depthwise, with a depth multiplier of 1 or 2
        groups, c_per_group, k_per_group = draw(st.integers(1, 8)), 1, draw(st.integers(1, 2))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, dilation = draw(int_or_pair(1, 4)), draw(int_or_pair(1, 3))
    form = draw(st.sampled_from(["int", "pair", "asymmetric", "valid", "same"]))
    side = st.integers(0, 4)
    padding = draw({"int": side, "pair": st.tuples(side, side),
                    "asymmetric": st.tuples(st.tuples(side, side), st.tuples(side, side)),
                    "valid": st.just("valid"), "same": st.just("same")}[form])
    # the smallest input that the dilated kernel fits ('same' pads any input enough), plus more
    need_h, need_w = 1, 1
    if padding != "same":
        (top, bottom), (left, right) = ((0, 0), (0, 0)) if padding == "valid" else \
            ref.resolve_conv_padding(padding, None, None, None, None)  # sizes matter only for 'same'
        dh, dw = ref.as_pair(dilation)
        need_h, need_w = dh * (r - 1) + 1 - top - bottom, dw * (s - 1) + 1 - left - right
    extra = st.integers(40, 60) if size == "large-image" else st.integers(0, 6)
    h, w = max(1, need_h) + draw(extra), max(1, need_w) + draw(extra)
    x_shape = (draw(st.integers(1, 3)), groups * c_per_group, h, w)
    w_shape = (groups * k_per_group, c_per_group, r, s)
    return x_shape, w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@st.composite
def pool_cases(draw, op):
    """(x shape, kwargs) of one pooling call of kind `op` whose kernel fits the padded input."""
    kernel = draw(int_or_pair(1, 5))
    kh, kw = ref.as_pair(kernel)
    kwargs = dict(kernel_size=kernel, stride=draw(st.one_of(st.none(), int_or_pair(1, 5))),
                  ceil_mode=draw(st.booleans()))
    pad_h = pad_w = 0
    if op != "lp":  # padding is at most half the kernel; lp pooling has none
        pad_h, pad_w = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
        kwargs["padding"] = pad_h if pad_h == pad_w and draw(st.booleans()) else (pad_h, pad_w)
    if op == "avg":
        kwargs["count_include_pad"] = draw(st.booleans())
    wide = draw(SIZES) != "small"  # rows of more than 64 outputs
    h = max(1, kh - 2 * pad_h) + draw(st.integers(0, 8))
    w = max(1, kw - 2 * pad_w) + draw(st.integers(330, 400) if wide else st.integers(0, 8))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 6)), h, w), kwargs


def drawn_algorithm(x_shape, w_shape, kwargs, pass_name, pick):
    """'auto' or one of the algorithms that apply to `pass_name` of the convolution, by `pick`."""
    names = ["auto"] + F.conv_algorithms(x_shape, w_shape, **kwargs)[pass_name]["applicable"]
    return names[pick % len(names)]


ALGORITHM_PICK = st.integers(0, 2**16)


# ----------------------------------------------------------------------------- properties

@given(case=conv_cases(), with_bias=st.booleans(), activation=st.sampled_from([None, "relu"]),
       layouts=st.tuples(LAYOUT, LAYOUT, LAYOUT), isa=st.sampled_from(SIMD_PATHS), pick=ALGORITHM_PICK, **COMMON)
def test_conv2d_forward_matches_reference(case, with_bias, activation, layouts, isa, pick, dtype, kind, threads,
                                          seed):
    x_shape, w_shape, kwargs = case
    algorithm = drawn_algorithm(x_shape, w_shape, kwargs, "forward", pick)
    rng = np.random.default_rng(seed)
    arrays = [values(rng, x_shape, kind, dtype), values(rng, w_shape, kind, dtype)]
    if with_bias:
        arrays.append(values(rng, w_shape[:1], kind, dtype))
    note(f"x {x_shape} weight {w_shape} {kwargs} bias={with_bias} activation={activation} "
         f"layouts={layouts} threads={threads} {isa} algorithm={algorithm}")
    expected = ref.conv2d(*arrays, **kwargs)
    if activation == "relu":
        expected = np.maximum(expected, 0.0)
    with running(threads, isa):
        check_op(F.conv2d, arrays, layouts, dict(kwargs, activation=activation, algorithm=algorithm), (expected,),
                 dtype, "y")


@given(case=conv_cases(), activation=st.sampled_from([None, "relu"]), compute_grad_x=st.booleans(),
       layouts=st.tuples(LAYOUT, LAYOUT, LAYOUT, LAYOUT), isa=st.sampled_from(SIMD_PATHS),
       picks=st.tuples(ALGORITHM_PICK, ALGORITHM_PICK), **COMMON)
def test_conv2d_backward_matches_reference(case, activation, compute_grad_x, layouts, isa, picks, dtype, kind,
                                           threads, seed):
    """With activation='relu', grad_out is masked where the forward's output (given as `output`,
    cconv's own, so that the reference masks exactly the same entries) is not positive."""
    x_shape, w_shape, kwargs = case
    algorithm = {p: drawn_algorithm(x_shape, w_shape, kwargs, p, pick)
                 for p, pick in zip(("grad_input", "grad_weight"), picks)}
    rng = np.random.default_rng(seed)
    x, weight = values(rng, x_shape, kind, dtype), values(rng, w_shape, kind, dtype)
    grad_out = values(rng, ref.conv2d(x, weight, **kwargs).shape, kind, dtype)
    note(f"x {x_shape} weight {w_shape} {kwargs} activation={activation} compute_grad_x={compute_grad_x} "
         f"layouts={layouts} threads={threads} {isa} algorithm={algorithm}")
    output, masked = {}, grad_out
    if activation == "relu":
        output["output"] = F.conv2d(x, weight, activation="relu", **kwargs)
        masked = np.where(output["output"] > 0, grad_out, 0)
    expected = ref.conv2d_backward(masked, x, weight, **kwargs)
    if not compute_grad_x:
        expected = (None,) + expected[1:]
    with running(threads, isa):
        check_op(F.conv2d_backward, (grad_out, x, weight), layouts,
                 dict(kwargs, activation=activation, compute_grad_x=compute_grad_x, algorithm=algorithm), expected,
                 dtype, "(grad_x, grad_weight, grad_bias)", array_kwargs=output)


def check_pool(op, shape, kwargs, layouts, dtype, kind, threads, seed, norm_type=()):
    """Forward and backward of pooling op `op` (norm_type: () or (p,) for lp) against the reference."""
    forward, backward = getattr(F, op + "_pool2d"), getattr(F, op + "_pool2d_backward")
    ref_forward, ref_backward = getattr(ref, op + "_pool2d"), getattr(ref, op + "_pool2d_backward")
    rng = np.random.default_rng(seed)
    x = values(rng, shape, kind, dtype)
    note(f"x {shape} {kwargs} norm_type={norm_type} layouts={layouts} threads={threads}")
    expected_y = ref_forward(x, *norm_type, **kwargs)
    grad_out = values(rng, expected_y.shape, "normal", dtype)
    expected_grad = ref_backward(grad_out, x, *norm_type, **kwargs)
    with running(threads):
        check_op(forward, (x,) + norm_type, layouts[1:], kwargs, (expected_y,), dtype, "y")
        check_op(backward, (grad_out, x) + norm_type, layouts, kwargs, (expected_grad,), dtype, "grad_x")


@given(case=pool_cases("max"), layouts=st.tuples(LAYOUT, LAYOUT), **COMMON)
def test_max_pool2d_matches_reference(case, layouts, dtype, kind, threads, seed):
    """Integer values give many ties: the gradient must go to the first maximum of each window."""
    check_pool("max", *case, layouts, dtype, kind, threads, seed)


@given(case=pool_cases("avg"), layouts=st.tuples(LAYOUT, LAYOUT), **COMMON)
def test_avg_pool2d_matches_reference(case, layouts, dtype, kind, threads, seed):
    check_pool("avg", *case, layouts, dtype, kind, threads, seed)


@given(case=pool_cases("lp"), layouts=st.tuples(LAYOUT, LAYOUT),
       norm_type=st.sampled_from([2, 1, 2.0, 3, 1.5, 0.5, 4.25]), **COMMON)
def test_lp_pool2d_matches_reference(case, layouts, norm_type, dtype, kind, threads, seed):
    """p = 1 and 2 take any sign (integers give windows whose sum is 0, where the gradient is
    defined as 0); other p take positive inputs bounded away from 0 (torch's formula gives NaN
    for a negative power sum, and the gradient is ill-conditioned near 0)."""
    if norm_type not in (1, 2):
        kind = "positive"
    check_pool("lp", *case, layouts, dtype, kind, threads, seed, (norm_type,))
