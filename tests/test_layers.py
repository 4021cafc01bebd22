"""Tests of cconv.layers: shapes and parameter counts, outputs against NumPy / PyTorch
references, float64 finite-difference checks of every layer's backward pass, train / eval
behaviour, and argument errors."""
import numpy as np
import pytest

from reference import numerical_gradient, rel_error

import cconv
from cconv.layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                          LeakyReLU, LPPool2D, MaxPool2D, ReLU, Residual, Sigmoid, Tanh)

H = 1e-6  # finite-difference step (float64)


def built(layer, input_shape, seed=0, dtype=np.float64):
    layer.build(input_shape, dtype, np.random.default_rng(seed))
    return layer


def check_layer_gradients(layer, x, rng, tol=1e-5, reseed=None):
    """Compare backward() with central differences of sum(forward(x) * g) for x and every param.

    `reseed`, when given, is called before each forward so random layers draw the same mask.
    """
    def forward():
        if reseed is not None:
            reseed()
        return layer.forward(x)

    out = forward()
    g = rng.standard_normal(out.shape)
    forward()
    grad_x = layer.backward(g)
    analytic = {"x": grad_x}
    analytic.update({k: v.copy() for k, v in layer.grads.items()})
    numeric = {"x": numerical_gradient(forward, x, g, H)}
    for name, param in layer.params.items():
        numeric[name] = numerical_gradient(forward, param, g, H)
    assert set(analytic) == set(numeric), f"grads {sorted(analytic)} vs params {sorted(numeric)}"
    for name in numeric:
        assert analytic[name].shape == numeric[name].shape, name
        err = rel_error(analytic[name], numeric[name])
        abs_err = float(np.max(np.abs(analytic[name] - numeric[name]), initial=0.0))
        # exact-zero gradients (a conv bias before BatchNorm) only have an absolute error
        assert err < tol or abs_err < 1e-8, \
            f"{type(layer).__name__} d{name}: relative error {err:.2e}, absolute {abs_err:.2e}"


# ---------------------------------------------------------------------------- shapes / counts

def test_ten_5x5_filters_on_3x32x32():
    layer = built(Conv2D(10, 5), (3, 32, 32), dtype=np.float32)
    assert layer.count_params() == 760
    assert layer.params["weight"].shape == (10, 3, 5, 5)
    assert layer.output_shape == (10, 28, 28)
    padded = built(Conv2D(10, 5, padding=2), (3, 32, 32), dtype=np.float32)
    assert padded.count_params() == 760 and padded.output_shape == (10, 32, 32)


@pytest.mark.parametrize("layer, input_shape, output_shape, params", [
    (Conv2D(8, 3, padding="same", stride=2), (3, 9, 9), (8, 5, 5), 8 * 27 + 8),
    (Conv2D(8, (3, 1), groups=2, use_bias=False), (4, 6, 6), (8, 4, 6), 8 * 2 * 3),
    (Conv2D(4, 3, dilation=2, padding=((1, 0), (2, 2))), (2, 9, 9), (4, 6, 9), 4 * 18 + 4),
    (MaxPool2D(2), (3, 7, 7), (3, 3, 3), 0),
    (MaxPool2D(3, stride=2, padding=1, ceil_mode=True), (3, 8, 8), (3, 5, 5), 0),
    (AvgPool2D((2, 3), stride=1), (2, 5, 5), (2, 4, 3), 0),
    (LPPool2D(2, 2), (2, 6, 6), (2, 3, 3), 0),
    (GlobalAvgPool2D(), (5, 4, 3), (5,), 0),
    (Flatten(), (5, 4, 3), (60,), 0),
    (Dense(7), (60,), (7,), 60 * 7 + 7),
    (Dense(7, use_bias=False), (60,), (7,), 60 * 7),
    (BatchNorm2D(), (6, 4, 4), (6, 4, 4), 24),
    (Residual([Conv2D(4, 3, padding=1), ReLU(), Conv2D(4, 3, padding=1)]), (4, 5, 5), (4, 5, 5),
     2 * (4 * 36 + 4)),
    (Residual([Conv2D(8, 3, stride=2, padding=1)], shortcut=Conv2D(8, 1, stride=2)), (4, 6, 6),
     (8, 3, 3), 8 * 36 + 8 + 8 * 4 + 8),
])
def test_output_shapes_and_parameter_counts(layer, input_shape, output_shape, params):
    built(layer, input_shape)
    assert layer.output_shape == output_shape
    assert layer.count_params() == params
    x = np.random.default_rng(1).standard_normal((2,) + input_shape)
    y = layer.forward(x)
    assert y.shape == (2,) + output_shape and y.dtype == np.float64
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_layer_builds_lazily_from_first_forward(rng):
    layer = Conv2D(3, 3)
    y = layer.forward(rng.standard_normal((2, 2, 5, 5)).astype(np.float32))
    assert layer.built and layer.input_shape == (2, 5, 5) and y.shape == (2, 3, 3, 3)
    assert y.dtype == np.float32 and layer.params["weight"].dtype == np.float32


# ---------------------------------------------------------------------------- forward values

def test_conv_layer_matches_reference(rng):
    from reference import conv2d
    layer = built(Conv2D(6, 3, stride=2, padding="same", dilation=1, groups=3, activation="relu"),
                  (3, 9, 8))
    layer.params["bias"][:] = rng.standard_normal(6)
    x = rng.standard_normal((2, 3, 9, 8))
    expected = np.maximum(conv2d(x, layer.params["weight"], layer.params["bias"], stride=2,
                                 padding="same", groups=3), 0)
    assert rel_error(layer.forward(x), expected) < 1e-9


def test_dense_and_activations_match_numpy(rng):
    x = rng.standard_normal((5, 6))
    dense = built(Dense(4, activation="tanh"), (6,))
    dense.params["bias"][:] = rng.standard_normal(4)
    np.testing.assert_allclose(dense.forward(x), np.tanh(x @ dense.params["weight"] + dense.params["bias"]))
    np.testing.assert_allclose(built(ReLU(), (6,)).forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(built(LeakyReLU(0.2), (6,)).forward(x), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(built(Sigmoid(), (6,)).forward(x), 1 / (1 + np.exp(-x)))
    big = np.array([[-1000.0, 1000.0]])
    with np.errstate(over="raise"):
        np.testing.assert_allclose(built(Sigmoid(), (2,)).forward(big), [[0.0, 1.0]])


def test_layers_do_not_modify_inputs(rng):
    for layer, shape in [(ReLU(), (3, 4, 4)), (Conv2D(2, 3, activation="relu"), (3, 4, 4)),
                         (BatchNorm2D(), (3, 4, 4)), (Dense(3, activation="relu"), (5,)),
                         (Residual([ReLU()], activation="relu"), (3, 4, 4))]:
        built(layer, shape)
        x = rng.standard_normal((2,) + shape)
        x_copy = x.copy()
        y = layer.forward(x)
        g = rng.standard_normal(y.shape)
        g_copy = g.copy()
        layer.backward(g)
        assert np.array_equal(x, x_copy) and np.array_equal(g, g_copy), type(layer).__name__


def test_batchnorm_matches_torch_in_train_and_eval():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    bn = built(BatchNorm2D(momentum=0.2, eps=1e-4), (3, 5, 5))
    bn.params["gamma"][:] = rng.standard_normal(3)
    bn.params["beta"][:] = rng.standard_normal(3)
    ref = torch.nn.BatchNorm2d(3, momentum=0.2, eps=1e-4).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(bn.params["gamma"]))
        ref.bias.copy_(torch.from_numpy(bn.params["beta"]))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = ref(tx)
    g = rng.standard_normal(x.shape)
    ty.backward(torch.from_numpy(g))
    y = bn.forward(x)
    np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(bn.backward(g), tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bn.grads["gamma"], ref.weight.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bn.buffers["running_mean"], ref.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], ref.running_var.numpy(), atol=1e-12)
    bn.eval()
    ref.eval()
    np.testing.assert_allclose(bn.forward(x), ref(torch.from_numpy(x)).detach().numpy(), atol=1e-12)


def test_dropout_train_and_eval(rng):
    layer = built(Dropout(0.25), (1000,))
    layer.rng = np.random.default_rng(0)
    x = np.ones((20, 1000))
    y = layer.forward(x)
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(layer.backward(x), y)  # same mask, same scaling
    layer.eval()
    assert np.array_equal(layer.forward(x), x)
    assert np.array_equal(layer.backward(x), x)


# ---------------------------------------------------------------------------- gradients (float64)

GRADIENT_CASES = [
    (lambda: Conv2D(3, 3), (2, 5, 5)),
    (lambda: Conv2D(4, (3, 2), stride=(2, 1), padding="same", dilation=(1, 2), activation="relu"), (2, 6, 7)),
    (lambda: Conv2D(4, 3, groups=2, use_bias=False, padding=((0, 1), (2, 0)), activation="tanh"), (4, 5, 5)),
    (lambda: Conv2D(2, 2, activation="leaky_relu"), (2, 4, 4)),
    (lambda: Conv2D(2, 3, activation="sigmoid", padding=1), (1, 4, 4)),
    (lambda: MaxPool2D(2), (2, 6, 6)),
    (lambda: MaxPool2D(3, stride=2, padding=1, ceil_mode=True), (2, 7, 7)),
    (lambda: AvgPool2D(2), (2, 6, 6)),
    (lambda: AvgPool2D(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True), (2, 6, 6)),
    (lambda: LPPool2D(2, 2), (2, 4, 4)),
    (lambda: LPPool2D(3, (2, 3), stride=1), (1, 4, 5)),
    (lambda: GlobalAvgPool2D(), (3, 4, 5)),
    (lambda: Flatten(), (2, 3, 4)),
    (lambda: Dense(5), (7,)),
    (lambda: Dense(4, activation="relu", use_bias=False), (6,)),
    (lambda: Dense(3, activation="sigmoid"), (6,)),
    (lambda: ReLU(), (3, 4, 4)),
    (lambda: LeakyReLU(0.1), (3, 4)),
    (lambda: Sigmoid(), (3, 4)),
    (lambda: Tanh(), (3, 4)),
    (lambda: BatchNorm2D(), (3, 4, 4)),
    (lambda: Residual([Conv2D(3, 3, padding=1, activation="relu"), Conv2D(3, 3, padding=1)],
                      activation="relu"), (3, 4, 4)),
    (lambda: Residual([Conv2D(4, 3, stride=2, padding=1), BatchNorm2D()],
                      shortcut=[Conv2D(4, 1, stride=2, use_bias=False)]), (2, 5, 5)),
]


@pytest.mark.parametrize("make, input_shape", GRADIENT_CASES,
                         ids=[f"{i}" for i in range(len(GRADIENT_CASES))])
def test_layer_gradients_finite_differences(make, input_shape, rng):
    layer = built(make(), input_shape, seed=1)
    for param in layer.params.values():  # non-trivial biases / BN affine parameters
        param += rng.uniform(-0.5, 0.5, size=param.shape)
    x = rng.standard_normal((3,) + input_shape)
    if isinstance(layer, LPPool2D):
        x = np.abs(x) + 0.1  # Lp pooling of odd p is only smooth away from 0
    check_layer_gradients(layer, x, rng)


def test_batchnorm_eval_mode_gradients(rng):
    layer = built(BatchNorm2D(), (3, 4, 4))
    layer.buffers["running_mean"][:] = rng.standard_normal(3)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2, 3)
    layer.eval()
    check_layer_gradients(layer, rng.standard_normal((2, 3, 4, 4)), rng)


def test_dropout_gradients_with_fixed_mask(rng):
    layer = built(Dropout(0.4), (3, 4, 4))

    def reseed():
        layer.rng = np.random.default_rng(5)

    check_layer_gradients(layer, rng.standard_normal((2, 3, 4, 4)), rng, reseed=reseed)


def test_float32_gradients_agree_with_float64(rng):
    x = rng.standard_normal((2, 2, 6, 6))
    g = rng.standard_normal((2, 3, 3, 3))
    results = []
    for dtype in (np.float64, np.float32):
        layer = built(Conv2D(3, 3, stride=2, padding=1, activation="relu"), (2, 6, 6), seed=4, dtype=dtype)
        layer.forward(x.astype(dtype))
        results.append((layer.backward(g.astype(dtype)), layer.grads["weight"]))
    for a, b in zip(*results):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- modes / errors

def test_residual_mode_and_params_propagate():
    block = built(Residual([Conv2D(2, 3, padding=1), BatchNorm2D(), Dropout(0.5)]), (2, 4, 4))
    assert sorted(block.params) == ["layers.0.bias", "layers.0.weight", "layers.1.beta", "layers.1.gamma"]
    assert sorted(block.buffers) == ["layers.1.running_mean", "layers.1.running_var"]
    block.eval()
    assert not any(layer.training for layer in block.layers)
    block.params["layers.0.bias"][:] = 7.0  # the merged dict shares the inner arrays
    assert np.all(block.layers[0].params["bias"] == 7.0)


@pytest.mark.parametrize("make, error", [
    (lambda: Conv2D(0, 3), ValueError),
    (lambda: Conv2D(4, 0), ValueError),
    (lambda: Conv2D(4, 3, padding="full"), ValueError),
    (lambda: Conv2D(4, 3, padding=-1), ValueError),
    (lambda: Conv2D(5, 3, groups=2), ValueError),
    (lambda: Conv2D(4, 3, activation="softplus"), ValueError),
    (lambda: Conv2D(4, 3, kernel_initializer="magic"), ValueError),
    (lambda: Conv2D(4.5, 3), TypeError),
    (lambda: Dense(-1), ValueError),
    (lambda: Dense(3, activation=3), TypeError),
    (lambda: MaxPool2D(2, padding=2), ValueError),
    (lambda: LPPool2D(0, 2), ValueError),
    (lambda: Dropout(1.0), ValueError),
    (lambda: Dropout("half"), TypeError),
    (lambda: BatchNorm2D(eps=0), ValueError),
    (lambda: Residual([]), ValueError),
    (lambda: Residual([np.zeros(3)]), TypeError),
])
def test_bad_constructor_arguments(make, error):
    with pytest.raises(error):
        make()


def test_build_and_forward_errors(rng):
    with pytest.raises(ValueError, match="Flatten"):
        built(Dense(3), (2, 4, 4))
    with pytest.raises(ValueError, match="larger than the padded input"):
        built(Conv2D(2, 5), (1, 3, 3))
    with pytest.raises(ValueError, match="groups=2 must divide the input channels"):
        built(Conv2D(4, 3, groups=2), (3, 5, 5))
    with pytest.raises(ValueError, match="must match"):
        built(Residual([Conv2D(3, 3)]), (3, 5, 5))
    layer = built(Conv2D(2, 3), (1, 5, 5))
    with pytest.raises(ValueError, match=r"shape \(N, 1, 5, 5\)"):
        layer.forward(rng.standard_normal((2, 1, 6, 5)))
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(rng.standard_normal((2, 1, 5, 5)).astype(np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        built(Conv2D(2, 3), (1, 5, 5)).backward(np.zeros((2, 2, 3, 3)))
    layer.forward(rng.standard_normal((2, 1, 5, 5)))
    with pytest.raises(ValueError, match="batch size"):
        layer.backward(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="grad_out"):
        layer.backward(np.zeros((2, 2, 4, 3)))


def test_layer_repr_and_config_roundtrip():
    layer = Conv2D(4, 3, stride=2, padding="same", activation="relu")
    clone = Conv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert "Conv2D(filters=4" in repr(layer)
    assert cconv.layers.layer_from_json(cconv.layers.layer_to_json(layer)).get_config() == layer.get_config()
