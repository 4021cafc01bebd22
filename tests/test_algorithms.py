"""The convolution algorithms behind conv2d's `algorithm=` argument (csrc/conv2d_plan.c decides
what 'auto' runs; each algorithm is a file of csrc/). Every algorithm is forced by name on shapes
it can run, whatever 'auto' would pick there, and checked against the NumPy reference for the
output and all three gradients, with and without the fused ReLU, on every SIMD path this CPU
runs. An unknown name or an algorithm that cannot run a geometry is a ValueError saying why."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from cconv import functional as F
from cconv._config import config

import reference as ref
from hypothesis_profiles import examples
from test_conv_paths import assert_non_finite_like_torch
from test_properties import SIMD_PATHS, running

# name: (x shape, weight shape, conv2d keyword arguments, algorithms that must apply), where an
# algorithm is a name (it runs every pass) or (name, the passes it runs; the GEMM runs the rest).
FORWARD_AND_WEIGHTS = ("forward", "grad_weight")
WINOGRAD = ("winograd", ("forward", "grad_input"))
CASES = {
    "strided": ((3, 6, 13, 11), (10, 6, 3, 3), dict(stride=2, padding=1), ["gemm", ("implicit_gemm", FORWARD_AND_WEIGHTS)]),
    "stem_7x7_stride_2": ((2, 3, 23, 22), (16, 3, 7, 7), dict(stride=2, padding=3),
                          ["gemm", ("implicit_gemm", FORWARD_AND_WEIGHTS)]),
    "strided_dilated_asymmetric": ((2, 4, 17, 19), (6, 4, 3, 2), dict(stride=(3, 2), padding=((2, 0), (1, 3)),
                                                                     dilation=(2, 3)),
                                   ["gemm", ("implicit_gemm", FORWARD_AND_WEIGHTS)]),
    "stride_4_11x11_grouped": ((1, 4, 30, 31), (8, 2, 11, 11), dict(stride=4, padding=2, groups=2),
                               ["gemm", ("implicit_gemm", FORWARD_AND_WEIGHTS)]),
    "pointwise_stride_2": ((2, 8, 9, 10), (12, 8, 1, 1), dict(stride=2), ["gemm", ("implicit_gemm", FORWARD_AND_WEIGHTS)]),
    "dilated_asymmetric": ((2, 5, 12, 14), (9, 5, 3, 2), dict(padding=((2, 1), (0, 1)), dilation=(2, 1)),
                           ["gemm", "implicit_gemm"]),
    "same_5x5_grouped": ((2, 8, 9, 10), (12, 4, 5, 5), dict(padding="same", groups=2), ["gemm", "implicit_gemm"]),
    # thin groups (ResNeXt): 4 channels and 8 filters per group, which 'auto' runs on the implicit GEMM
    "thin_groups": ((2, 32, 9, 10), (64, 4, 3, 3), dict(padding=1, groups=8), ["gemm", "implicit_gemm"]),
    "deep_many_filters": ((2, 48, 7, 9), (40, 48, 3, 3), dict(padding=1), ["gemm", "implicit_gemm", WINOGRAD]),
    "first_layer": ((4, 1, 15, 16), (32, 1, 3, 3), dict(padding=1), ["gemm", "implicit_gemm", WINOGRAD]),
    "pointwise": ((3, 24, 7, 9), (40, 24, 1, 1), dict(), ["gemm", "implicit_gemm", "pointwise"]),
    # more pixels than one block of the weight gradient (384), and few filters (its transposed product):
    "pointwise_many_pixels": ((2, 16, 20, 24), (24, 16, 1, 1), dict(), ["gemm", "implicit_gemm", "pointwise"]),
    "pointwise_few_filters": ((2, 70, 20, 21), (3, 70, 1, 1), dict(), ["gemm", "implicit_gemm", "pointwise"]),
    "pointwise_grouped": ((2, 12, 6, 5), (18, 4, 1, 1), dict(groups=3, dilation=2),
                          ["gemm", "implicit_gemm", "pointwise"]),
    # maps smaller than one block of columns, weights too large to stay in cache from one image to
    # the next: the GEMM's items hold several whole images
    "small_maps": ((5, 128, 4, 4), (64, 128, 3, 3), dict(padding=1), ["gemm", "implicit_gemm", WINOGRAD]),
    "small_maps_strided_odd": ((5, 128, 7, 9), (64, 128, 3, 3), dict(stride=2),
                               ["gemm", ("implicit_gemm", FORWARD_AND_WEIGHTS)]),
    "small_maps_pointwise_grouped": ((4, 512, 3, 5), (512, 256, 1, 1), dict(groups=2),
                                     ["gemm", "implicit_gemm", "pointwise"]),
    "one_by_one_padded": ((2, 4, 5, 6), (8, 4, 1, 1), dict(padding=1), ["gemm"]),  # crops the implicit dx
    "depthwise": ((2, 6, 8, 8), (6, 1, 3, 3), dict(padding=1, groups=6), ["gemm", "implicit_gemm", "depthwise"]),
    # the depthwise algorithm: its 3x3 and 5x5 kernels, rows of odd widths (vector tails) and
    # narrower than a vector, strided (the scatter gradient, column phases), the generic taps
    # with dilation and asymmetric padding, channel multipliers, one channel (groups = C = 1)
    "depthwise_3x3": ((2, 16, 12, 19), (16, 1, 3, 3), dict(padding=1, groups=16), ["gemm", "depthwise"]),
    "depthwise_3x3_stride2": ((2, 8, 13, 21), (8, 1, 3, 3), dict(stride=2, padding=1, groups=8), ["gemm", "depthwise"]),
    "depthwise_5x5": ((2, 5, 11, 23), (5, 1, 5, 5), dict(padding=2, groups=5), ["gemm", "depthwise"]),
    "depthwise_7x3_dilated_asymmetric": ((2, 3, 17, 12), (3, 1, 7, 3), dict(padding=((5, 2), (1, 3)), dilation=2, groups=3),
                                         ["gemm", "depthwise"]),
    "depthwise_multiplier_2": ((2, 4, 9, 10), (8, 1, 3, 3), dict(padding=1, groups=4), ["gemm", "depthwise"]),
    "depthwise_multiplier_3_column_stride": ((2, 3, 7, 17), (9, 1, 3, 5), dict(stride=(1, 3), padding=(1, 2), groups=3),
                                             ["gemm", "depthwise"]),
    "depthwise_narrow_batch1": ((1, 6, 5, 3), (6, 1, 3, 3), dict(padding=1, groups=6), ["gemm", "depthwise"]),
    "depthwise_one_column": ((2, 3, 4, 1), (3, 1, 3, 1), dict(padding=(1, 0), groups=3), ["gemm", "depthwise"]),
    "depthwise_padding_past_dilated_filter": ((1, 2, 3, 2), (2, 1, 2, 2), dict(padding=4, dilation=3, groups=2),
                                              ["gemm", "depthwise"]),
    # small planes with many channels: rows shorter than a vector (tiles of up to eight rows), 7x7
    # and 14x14 maps, batch 1, and a 7x7 filter over 14x14 planes
    "depthwise_7x7_planes_many_channels": ((2, 40, 7, 7), (40, 1, 3, 3), dict(padding=1, groups=40),
                                           ["gemm", "depthwise"]),
    "depthwise_14x14_batch1": ((1, 24, 14, 14), (24, 1, 3, 3), dict(padding=1, groups=24), ["gemm", "depthwise"]),
    "depthwise_7x7_filter_14x14": ((2, 12, 14, 14), (12, 1, 7, 7), dict(padding=3, groups=12), ["gemm", "depthwise"]),
    "depthwise_small_planes_stride2": ((3, 16, 6, 7), (16, 1, 3, 3), dict(stride=2, padding=1, groups=16),
                                       ["gemm", "depthwise"]),
    "depthwise_single_channel": ((2, 1, 9, 10), (3, 1, 3, 3), dict(padding=1),
                                 ["gemm", "implicit_gemm", "depthwise", WINOGRAD]),
    # Winograd: maps that end inside a tile (odd sizes), no padding, asymmetric padding wider than
    # the filter (its gradient of the input crops), several bands of tile rows in one image, many
    # images per work item, and outputs of a few pixels (2x2 output tiles)
    "winograd_odd_sizes": ((2, 7, 13, 11), (9, 7, 3, 3), dict(padding=1), ["gemm", WINOGRAD]),
    "winograd_unpadded": ((2, 5, 10, 9), (6, 5, 3, 3), dict(), ["gemm", WINOGRAD]),
    "winograd_asymmetric_padding": ((2, 4, 9, 12), (5, 4, 3, 3), dict(padding=((3, 0), (0, 4))), ["gemm", WINOGRAD]),
    "winograd_bands": ((1, 6, 41, 45), (8, 6, 3, 3), dict(padding=1), ["gemm", WINOGRAD]),
    "winograd_many_images": ((9, 6, 5, 6), (7, 6, 3, 3), dict(padding=1), ["gemm", WINOGRAD]),
    "winograd_2x2_tiles": ((3, 6, 2, 3), (4, 6, 3, 3), dict(padding=1), ["gemm", WINOGRAD]),
    "winograd_one_pixel": ((2, 5, 1, 1), (3, 5, 3, 3), dict(padding=1), ["gemm", WINOGRAD]),
    "winograd_dilated": ((2, 6, 13, 11), (7, 6, 3, 3), dict(padding=((2, 3), (4, 1)), dilation=(2, 3)),
                         ["gemm", "implicit_gemm", WINOGRAD]),
}
PASSES = ("forward", "grad_input", "grad_weight")
FORCED = [(name, algorithm if isinstance(algorithm, str) else algorithm[0])
          for name, case in CASES.items() for algorithm in case[3]]


def forced_passes(name, algorithm):
    """The passes CASES says `algorithm` runs on case `name`."""
    for entry in CASES[name][3]:
        if entry == algorithm:
            return PASSES
        if not isinstance(entry, str) and entry[0] == algorithm:
            return entry[1]
    raise KeyError(algorithm)


def arrays(name, dtype, seed=0):
    x_shape, w_shape, kwargs, _ = CASES[name]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), (rng.standard_normal(w_shape) * 0.3).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype), dict(kwargs))


def test_every_built_algorithm_is_exercised():
    assert set(F.ALGORITHMS) == {algorithm for _, algorithm in FORCED}
    assert config()["conv_algorithms"].split(",") == list(F.ALGORITHMS)


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("isa", SIMD_PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,algorithm", FORCED)
def test_forced_algorithm_matches_reference(name, algorithm, dtype, isa, relu):
    x, weight, bias, kwargs = arrays(name, dtype)
    activation = "relu" if relu else None
    forced = {p: algorithm if p in forced_passes(name, algorithm) else "gemm" for p in PASSES}
    with running(2, isa):
        y = F.conv2d(x, weight, bias, activation=activation, algorithm=forced["forward"], **kwargs)
        grad_out = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        grads = F.conv2d_backward(grad_out, x, weight, activation=activation, output=y if relu else None,
                                  algorithm={p: forced[p] for p in PASSES[1:]}, **kwargs)
    plain = ref.conv2d(x, weight, bias, **kwargs)
    ref.assert_close(y, np.maximum(plain, 0) if relu else plain, dtype, "y")
    expected = ref.conv2d_backward(grad_out * (plain > 0) if relu else grad_out, x, weight, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        ref.assert_close(got, want, dtype, what)


@pytest.mark.parametrize("name", CASES)
def test_conv_algorithms_lists_what_applies(name):
    x_shape, w_shape, kwargs, applicable = CASES[name]
    listed = F.conv_algorithms(x_shape, w_shape, **kwargs)
    assert set(listed) == set(PASSES)
    for pass_name, entry in listed.items():
        runs = {a for a in map(lambda a: a if isinstance(a, str) else a[0], applicable)
                if pass_name in forced_passes(name, a)}
        assert runs <= set(entry["applicable"]), pass_name
        assert entry["auto"] in entry["applicable"]
        assert "gemm" in entry["applicable"]  # the GEMM runs any geometry
    if "pointwise" not in applicable:
        assert all("pointwise" not in entry["applicable"] for entry in listed.values())


def test_passes_can_be_forced_separately():
    x, weight, bias, kwargs = arrays("deep_many_filters", np.float64)
    y = F.conv2d(x, weight, bias, algorithm={"forward": "gemm"}, **kwargs)
    grads = F.conv2d_backward(y, x, weight, algorithm={"grad_input": "implicit_gemm", "grad_weight": "gemm"},
                              **kwargs)
    expected = ref.conv2d_backward(y, x, weight, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        ref.assert_close(got, want, np.float64, what)


def test_unknown_algorithm_names_the_choices():
    x, weight, bias, kwargs = arrays("strided", np.float32)
    with pytest.raises(ValueError, match=r"unknown convolution algorithm 'fft'.*'gemm'.*'implicit_gemm'"):
        F.conv2d(x, weight, algorithm="fft", **kwargs)
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        F.conv2d(x, weight, algorithm=None, **kwargs)
    with pytest.raises(ValueError, match="algorithm keys must be among"):
        F.conv2d_backward(np.ones((3, 10, 7, 6), np.float32), x, weight, algorithm={"forward": "gemm"}, **kwargs)


@pytest.mark.parametrize("call,algorithm,why", [
    ("backward", "implicit_gemm", "gradient of the input runs stride 1 only"),
    ("forward", "pointwise", "1x1 filters with stride 1 and no padding"),
    ("backward", "pointwise", "1x1 filters"),
    ("forward", "winograd", "3x3 filters with stride 1 and one group only"),
])
def test_algorithm_that_cannot_run_says_why(call, algorithm, why):
    x, weight, bias, kwargs = arrays("strided", np.float32)
    with pytest.raises(ValueError, match=f"cannot run the .* pass of this convolution: .*{why}"):
        if call == "forward":
            F.conv2d(x, weight, algorithm=algorithm, **kwargs)
        else:
            F.conv2d_backward(np.ones((3, 10, 7, 6), np.float32), x, weight, algorithm=algorithm, **kwargs)


def test_implicit_gemm_gradient_refuses_cropping_padding():
    """Padding wider than the dilated filter crops the input gradient: only the GEMM runs it."""
    x = np.ones((1, 2, 6, 6), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    listed = F.conv_algorithms(x.shape, w.shape, padding=3)
    assert "implicit_gemm" in listed["forward"]["applicable"]
    assert "implicit_gemm" not in listed["grad_input"]["applicable"]
    with pytest.raises(ValueError, match="grad input pass.*crops"):
        F.conv2d_backward(F.conv2d(x, w, padding=3), x, w, padding=3, algorithm="implicit_gemm")
    grads = F.conv2d_backward(F.conv2d(x, w, padding=3), x, w, padding=3,
                              algorithm={"grad_input": "gemm", "grad_weight": "implicit_gemm"})
    ref.assert_close(grads[1], ref.conv2d_backward(F.conv2d(x, w, padding=3), x, w, padding=3)[1], np.float32)


def test_auto_is_bitwise_one_of_the_algorithms():
    """'auto' runs exactly one of the named algorithms: its results are bit-identical to it."""
    for name in ("deep_many_filters", "pointwise", "strided", "thin_groups"):
        x, weight, bias, kwargs = arrays(name, np.float32)
        chosen = F.conv_algorithms(x.shape, weight.shape, **kwargs)
        y = F.conv2d(x, weight, bias, **kwargs)
        np.testing.assert_array_equal(
            y, F.conv2d(x, weight, bias, algorithm=chosen["forward"]["auto"], **kwargs))
        auto = F.conv2d_backward(y, x, weight, **kwargs)
        forced = F.conv2d_backward(y, x, weight, algorithm={p: chosen[p]["auto"] for p in ("grad_input", "grad_weight")},
                                   **kwargs)
        for a, b in zip(auto, forced):
            np.testing.assert_array_equal(a, b)


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_any_applicable_algorithm_matches_reference(data):
    """Random geometries, each pass forced to a random algorithm among those that apply."""
    n = data.draw(st.integers(1, 3))
    groups = data.draw(st.integers(1, 3))
    c = groups * data.draw(st.integers(1, 5))
    k = groups * data.draw(st.integers(1, 7))
    r, s = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    stride = data.draw(st.sampled_from([1, 1, 2, (1, 2)]))
    dilation = data.draw(st.sampled_from([1, 1, 2]))
    pad = ((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))),
           (data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))))
    h, w = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    kwargs = dict(stride=stride, padding=pad, dilation=dilation, groups=groups)
    try:
        listed = F.conv_algorithms((n, c, h, w), (k, c // groups, r, s), **kwargs)
    except ValueError:  # the filter does not fit the padded input
        return
    chosen = {p: data.draw(st.sampled_from(entry["applicable"])) for p, entry in listed.items()}
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((k, c // groups, r, s))
    y = F.conv2d(x, weight, algorithm=chosen["forward"], **kwargs)
    ref.assert_close(y, ref.conv2d(x, weight, **kwargs), np.float64, "y")
    grads = F.conv2d_backward(y, x, weight, algorithm={p: chosen[p] for p in ("grad_input", "grad_weight")}, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                               ref.conv2d_backward(y, x, weight, **kwargs)):
        ref.assert_close(got, want, np.float64, what)


@pytest.mark.skipif(len(SIMD_PATHS) < 2, reason="one SIMD path: nothing to switch between")
def test_switching_simd_path_during_calls_is_safe():
    """Each call takes the micro-kernel configs once, when it starts: switching them while other
    threads compute must not change (or break) what those calls return."""
    import threading

    from cconv import _conv
    x, weight, bias, kwargs = arrays("deep_many_filters", np.float64)
    want_y = ref.conv2d(x, weight, bias, **kwargs)
    want_grads = ref.conv2d_backward(want_y, x, weight, **kwargs)
    before, stop, failures = _conv.simd_path()[0], threading.Event(), []

    def compute():
        for _ in range(40):
            y = F.conv2d(x, weight, bias, **kwargs)
            grads = F.conv2d_backward(want_y, x, weight, **kwargs)
            try:
                ref.assert_close(y, want_y, np.float64, "y")
                for got, want in zip(grads, want_grads):
                    ref.assert_close(got, want, np.float64, "grad")
            except AssertionError as error:
                failures.append(error)

    def switch():
        i = 0
        while not stop.is_set():
            _conv.force_simd_path(SIMD_PATHS[i % len(SIMD_PATHS)])
            i += 1

    workers = [threading.Thread(target=compute) for _ in range(2)]
    switcher = threading.Thread(target=switch)
    switcher.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    switcher.join()
    _conv.force_simd_path(before)
    assert not failures, failures[0]


def test_implicit_gemm_refuses_a_slab_too_large_and_auto_runs_the_gemm():
    """Huge padding and dilation with a 1x1 output: the implicit GEMM's padded copy of the input
    would not fit memory (its size does not even fit an int64), so it refuses by name and 'auto'
    runs the GEMM, which answers cheaply. Only the middle filter row meets the pixel."""
    big = 2**31 - 1
    rng = np.random.default_rng(0)
    issue = (np.ones((1, 641, 1, 1), np.float32), np.ones((8, 641, 3, 2), np.float32),
             dict(padding=((big, big), (6700416, 6700416)), dilation=(big, 13400832)))
    hits = (rng.standard_normal((1, 641, 1, 1)), rng.standard_normal((8, 641, 3, 1)),
            dict(padding=((big, big), (0, 0)), dilation=(big, 1)))
    for x, w, kwargs in (issue, hits):
        listed = F.conv_algorithms(x.shape, w.shape, **kwargs)
        assert all("implicit_gemm" not in entry["applicable"] for entry in listed.values())
        with pytest.raises(ValueError, match="too large for this padding and dilation"):
            F.conv2d(x, w, algorithm="implicit_gemm", **kwargs)
    x, w, kwargs = hits
    middle = w[:, :, 1, 0]
    y = F.conv2d(x, w, **kwargs)
    np.testing.assert_allclose(y.ravel(), middle @ x.ravel(), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv2d_backward(dy, x, w, **kwargs)
    np.testing.assert_allclose(dx.ravel(), middle.T @ dy.ravel(), rtol=1e-12)
    want_dw = np.zeros_like(w)
    want_dw[:, :, 1, 0] = np.outer(dy.ravel(), x.ravel())
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12)
    np.testing.assert_allclose(db, dy.ravel(), rtol=1e-12)


def test_auto_takes_several_images_per_item_only_where_the_weights_leave_the_cache():
    """Small maps with large weights run the GEMM (several whole images per work item); small
    maps with small weights (LeNet's second layer) keep the implicit GEMM."""
    large = F.conv_algorithms((5, 128, 4, 4), (64, 128, 5, 5), padding=2)
    assert {entry["auto"] for entry in large.values()} == {"gemm"}
    small = F.conv_algorithms((64, 6, 14, 14), (16, 6, 5, 5))
    assert {entry["auto"] for entry in small.values()} == {"implicit_gemm"}


def test_auto_runs_the_implicit_gemm_on_thin_groups():
    """ResNeXt's grouped 3x3 (4 or 8 channels and filters per group) runs the implicit GEMM on
    every pass: the GEMM's packing is repaid over too few filters."""
    for x_shape, w_shape in (((8, 256, 56, 56), (256, 8, 3, 3)), ((16, 128, 28, 28), (128, 4, 3, 3))):
        listed = F.conv_algorithms(x_shape, w_shape, padding=1, groups=32)
        assert {entry["auto"] for entry in listed.values()} == {"implicit_gemm"}


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_depthwise_matches_reference(data):
    """Random depthwise geometries (channel multipliers, any filter, stride, dilation and padding,
    images down to one pixel), forced onto the depthwise algorithm, with and without the ReLU."""
    n, c, m = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    r, s = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    dilation = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    pad = ((data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6))),
           (data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6))))
    h, w = data.draw(st.integers(1, 20)), data.draw(st.integers(1, 40))
    relu = data.draw(st.booleans())
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    kwargs = dict(stride=stride, padding=pad, dilation=dilation, groups=c)
    try:
        listed = F.conv_algorithms((n, c, h, w), (c * m, 1, r, s), **kwargs)
    except ValueError:  # the filter does not fit the padded input
        return
    assert all("depthwise" in entry["applicable"] for entry in listed.values())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((c * m, 1, r, s)).astype(dtype)
    bias = rng.standard_normal(c * m).astype(dtype)
    activation = "relu" if relu else None
    y = F.conv2d(x, weight, bias, activation=activation, algorithm="depthwise", **kwargs)
    plain = ref.conv2d(x, weight, bias, **kwargs)
    ref.assert_close(y, np.maximum(plain, 0) if relu else plain, dtype, "y")
    grad_out = rng.standard_normal(y.shape).astype(dtype)
    grads = F.conv2d_backward(grad_out, x, weight, activation=activation, output=y if relu else None,
                              algorithm="depthwise", **kwargs)
    expected = ref.conv2d_backward(grad_out * (plain > 0) if relu else grad_out, x, weight, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        ref.assert_close(got, want, dtype, what)


def test_auto_runs_depthwise_for_depthwise_layers():
    listed = F.conv_algorithms((2, 32, 16, 16), (64, 1, 3, 3), stride=2, padding=1, groups=32)
    assert all(entry["auto"] == "depthwise" for entry in listed.values())
    # one channel is an ordinary convolution: its filters fill the GEMM's tiles
    listed = F.conv_algorithms((2, 1, 16, 16), (32, 1, 3, 3), padding=1)
    assert "depthwise" in listed["forward"]["applicable"] and listed["forward"]["auto"] != "depthwise"
    with pytest.raises(ValueError, match="depthwise algorithm runs groups == C only"):
        F.conv2d(np.ones((1, 4, 5, 5), np.float32), np.ones((4, 2, 3, 3), np.float32), groups=2, algorithm="depthwise")


@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_weight_gradient_is_deterministic(threads):
    x, weight, bias, kwargs = arrays("depthwise_3x3", np.float32)
    grad_out = np.random.default_rng(5).standard_normal((2, 16, 12, 19)).astype(np.float32)
    with running(threads, SIMD_PATHS[-1]):
        first = F.conv2d_backward(grad_out, x, weight, algorithm="depthwise", **kwargs)
        for _ in range(3):
            for a, b in zip(first, F.conv2d_backward(grad_out, x, weight, algorithm="depthwise", **kwargs)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("poisoned", ["x", "weight"])
def test_depthwise_non_finite_values_stay_where_torch_puts_them(poisoned, stride):
    """Padding meets every tap in the forward (as in torch's and the GEMM's products) but not in
    the gradients: an infinity in x or the weights must not spread NaN where torch has numbers."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 11, 13))
    weight = rng.standard_normal((12, 1, 3, 3)) * 0.3
    bias = rng.standard_normal(12)
    kwargs = dict(stride=stride, padding=1, groups=6)
    target = x if poisoned == "x" else weight
    target.flat[rng.choice(target.size, 3, replace=False)] = np.inf
    y = F.conv2d(x, weight, bias, algorithm="depthwise", **kwargs)
    grad_out = rng.standard_normal(y.shape)
    grads = F.conv2d_backward(grad_out, x, weight, algorithm="depthwise", **kwargs)
    assert_non_finite_like_torch(torch, x, weight, bias, kwargs, y, grad_out, grads)


def test_depthwise_refuses_planes_too_large_and_auto_runs_the_gemm():
    """A depthwise layer with huge padding and dilation: its padded planes would not fit memory,
    so the depthwise algorithm refuses by name and 'auto' runs the GEMM; only the middle tap of
    each filter meets the one pixel."""
    big = 2**31 - 1
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 4, 1, 1)), rng.standard_normal((8, 1, 3, 1))
    kwargs = dict(padding=((big, big), (0, 0)), dilation=(big, 1), groups=4)
    listed = F.conv_algorithms(x.shape, w.shape, **kwargs)
    assert all(entry["applicable"] == ["gemm"] for entry in listed.values())
    with pytest.raises(ValueError, match="depthwise algorithm's zero-padded planes would be too large"):
        F.conv2d(x, w, algorithm="depthwise", **kwargs)
    middle, channel = w[:, 0, 1, 0], np.repeat(x.ravel(), 2)  # filter k reads channel k // 2
    y = F.conv2d(x, w, **kwargs)
    np.testing.assert_allclose(y.ravel(), middle * channel, rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv2d_backward(dy, x, w, **kwargs)
    np.testing.assert_allclose(dx.ravel(), (middle * dy.ravel()).reshape(4, 2).sum(1), rtol=1e-12)
    want_dw = np.zeros_like(w)
    want_dw[:, 0, 1, 0] = dy.ravel() * channel
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12)
    np.testing.assert_allclose(db, dy.ravel(), rtol=1e-12)


@pytest.mark.parametrize("stride", [(1, 2**31 - 1), (2**31 - 1, 1), (2**31 - 1, 2**31 - 1)])
def test_depthwise_refuses_huge_strides_and_auto_runs_the_gemm(stride):
    """A huge stride leaves a small output, but the depthwise algorithm's slab rows hold one phase
    per column of the stride (and its strided gradient of the input one class of pixels per phase):
    it refuses, rather than allocate gigabytes per thread, and 'auto' runs the GEMM."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((6, 1, 2, 3))
    kwargs = dict(stride=stride, padding=1, groups=3)
    listed = F.conv_algorithms(x.shape, w.shape, **kwargs)
    assert all(entry["applicable"] == ["gemm"] for entry in listed.values())
    with pytest.raises(ValueError, match="depthwise algorithm's zero-padded planes would be too large"):
        F.conv2d(x, w, algorithm="depthwise", **kwargs)
    y = F.conv2d(x, w, **kwargs)
    ref.assert_close(y, ref.conv2d(x, w, **kwargs), np.float64, "y")
    dy = rng.standard_normal(y.shape)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), F.conv2d_backward(dy, x, w, **kwargs),
                               ref.conv2d_backward(dy, x, w, **kwargs)):
        ref.assert_close(got, want, np.float64, what)


def algorithm_geometry(data, algorithm):
    """(x shape, weight shape, kwargs) drawn for `algorithm` to apply to most of the time: depthwise
    layers (groups = C) for 'depthwise', unpadded 1x1 stride-1 filters for 'pointwise', 3x3 stride-1
    filters in one group for 'winograd', strides up to 3 for 'implicit_gemm', anything for 'gemm'."""
    n = data.draw(st.integers(1, 3))
    pad = ((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))),
           (data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    dilation = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    r, s = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    groups = data.draw(st.integers(1, 3))
    c, k = groups * data.draw(st.integers(1, 4)), groups * data.draw(st.integers(1, 6))
    if algorithm == "depthwise":
        c, k = groups, groups * data.draw(st.integers(1, 3))
    if algorithm == "pointwise":
        r = s = 1
        stride, pad = (1, 1), ((0, 0), (0, 0))
    if algorithm == "winograd":
        r = s = 3
        stride, groups, c, k = (1, 1), 1, c // groups, k // groups
    need_h = dilation[0] * (r - 1) + 1 - sum(pad[0])
    need_w = dilation[1] * (s - 1) + 1 - sum(pad[1])
    h, w = max(1, need_h) + data.draw(st.integers(0, 9)), max(1, need_w) + data.draw(st.integers(0, 9))
    return (n, c, h, w), (k, c // groups, r, s), dict(stride=stride, padding=pad, dilation=dilation, groups=groups)


@pytest.mark.parametrize("algorithm", F.ALGORITHMS)
@settings(max_examples=examples(25), deadline=None)
@given(data=st.data())
def test_each_algorithm_forced_by_name_on_random_geometries(algorithm, data):
    """Every algorithm fuzzed on its own: random geometries it applies to, every pass it can run
    forced to it by name (the others to the GEMM), forward and backward with and without the fused
    ReLU, in float32 or float64, against the NumPy reference."""
    x_shape, w_shape, kwargs = algorithm_geometry(data, algorithm)
    listed = F.conv_algorithms(x_shape, w_shape, **kwargs)
    forced = {p: algorithm if algorithm in entry["applicable"] else "gemm" for p, entry in listed.items()}
    assume(algorithm in forced.values())
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    relu = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal(x_shape).astype(dtype)
    weight, bias = rng.standard_normal(w_shape).astype(dtype), rng.standard_normal(w_shape[0]).astype(dtype)
    activation = "relu" if relu else None
    with running(data.draw(st.integers(1, 3))):
        y = F.conv2d(x, weight, bias, activation=activation, algorithm=forced["forward"], **kwargs)
        grad_out = rng.standard_normal(y.shape).astype(dtype)
        grads = F.conv2d_backward(grad_out, x, weight, activation=activation, output=y if relu else None,
                                  algorithm={p: forced[p] for p in PASSES[1:]}, **kwargs)
    plain = ref.conv2d(x, weight, bias, **kwargs)
    ref.assert_close(y, np.maximum(plain, 0) if relu else plain, dtype, "y")
    expected = ref.conv2d_backward(grad_out * (plain > 0) if relu else grad_out, x, weight, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        ref.assert_close(got, want, dtype, what)


def test_auto_keeps_the_implicit_gemm_off_rows_that_are_mostly_padding():
    """Padding and dilation far wider than the map: the implicit GEMM would compute whole padded
    rows for a few outputs, so 'auto' runs the GEMM, which packs only what the outputs read."""
    x, w = np.ones((1, 16, 8, 8), np.float32), np.ones((16, 16, 1, 3), np.float32)
    kwargs = dict(padding=(0, 10**4), dilation=(1, 10**4))
    listed = F.conv_algorithms(x.shape, w.shape, **kwargs)
    assert all("implicit_gemm" in entry["applicable"] and entry["auto"] == "gemm" for entry in listed.values())
    y = F.conv2d(x, w, **kwargs)
    ref.assert_close(y, ref.conv2d(x, w, **kwargs), np.float32, "y")
