"""The unchecked call path: layers inside a model run cconv.functional's unchecked entries with a
geometry cached per input shape, and must give bitwise what the public, checked operators give,
whatever the batch sizes between calls; bad input is still refused, with a clear error, where it
enters (a public operator, a layer's forward / backward, a model, a trainer)."""
import threading

import numpy as np
import pytest

import cconv
from cconv import functional as F
from cconv.layers import (AvgPool2D, Conv2D, Dense, Flatten, GlobalAvgPool2D, LPPool2D, MaxPool2D,
                          Tanh)

BATCHES = (3, 5, 3, 1, 5)  # the batch size changes between calls, and comes back


def built(layer, input_shape, dtype, seed=0):
    layer.build(input_shape, dtype, np.random.default_rng(seed))
    for name, value in layer.params.items():  # a non-zero bias, so that it is exercised
        if name == "bias":
            value[:] = np.random.default_rng(seed + 1).standard_normal(value.shape)
    return layer


def conv_reference(layer, x, g):
    """(y, grad_x, grad_weight, grad_bias) of a Conv2D layer's arguments, by the public operators."""
    fused = "relu" if layer.activation == "relu" else None
    args = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    y = F.conv2d(x, layer.params["weight"], layer.params.get("bias"), activation=fused, **args)
    return (y,) + F.conv2d_backward(g, x, layer.params["weight"], activation=fused, output=y, **args)


CONV_LAYERS = {
    "same": lambda: Conv2D(6, 3, padding="same"),
    "stride-2-valid": lambda: Conv2D(4, 3, stride=2, padding="valid", use_bias=False),
    "dilated-asymmetric": lambda: Conv2D(4, (3, 2), padding=((1, 0), (2, 1)), dilation=(2, 1)),
    "grouped-relu": lambda: Conv2D(6, 3, padding=1, groups=3, activation="relu"),
    "pointwise": lambda: Conv2D(5, 1),
    "same-stride-3": lambda: Conv2D(4, 3, stride=3, padding="same", activation="relu"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", CONV_LAYERS.values(), ids=CONV_LAYERS.keys())
def test_conv_layer_unchecked_matches_public_operators(make, dtype, rng):
    layer = built(make(), (3, 9, 8), dtype)
    for n in BATCHES:
        x = rng.standard_normal((n, 3, 9, 8)).astype(dtype)
        g = rng.standard_normal((n,) + layer.output_shape).astype(dtype)
        y, grad_x, grad_w, grad_b = conv_reference(layer, x, g)
        np.testing.assert_array_equal(layer.forward_unchecked(x), y)
        np.testing.assert_array_equal(layer.backward_unchecked(g), grad_x)
        np.testing.assert_array_equal(layer.grads["weight"], grad_w)
        if layer.use_bias:
            np.testing.assert_array_equal(layer.grads["bias"], grad_b)
        # the checked layer entries take the same path
        np.testing.assert_array_equal(layer(x), y)
        np.testing.assert_array_equal(layer.backward(g), grad_x)
        assert layer.backward_unchecked(g, need_input_grad=False) is None
        np.testing.assert_array_equal(layer.grads["weight"], grad_w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_dense_layer_unchecked_matches_public_operators(activation, dtype, rng):
    layer = built(Dense(7, activation=activation), (11,), dtype)
    w, b = layer.params["weight"], layer.params["bias"]
    for n in BATCHES:
        x = rng.standard_normal((n, 11)).astype(dtype)
        g = rng.standard_normal((n, 7)).astype(dtype)
        y = F.dense(x, w, b, activation=activation)
        grad_x, grad_w, grad_b = F.dense_backward(g, x, w, activation=activation, output=y)
        np.testing.assert_array_equal(layer.forward_unchecked(x), y)
        np.testing.assert_array_equal(layer.backward_unchecked(g), grad_x)
        np.testing.assert_array_equal(layer.grads["weight"], grad_w)
        np.testing.assert_array_equal(layer.grads["bias"], grad_b)


POOL_LAYERS = {  # layer, public forward, public backward (x, and g for the backward)
    "max": (lambda: MaxPool2D(3, 2, padding=1),
            lambda x: F.max_pool2d(x, 3, 2, 1), lambda g, x: F.max_pool2d_backward(g, x, 3, 2, 1)),
    "max-ceil": (lambda: MaxPool2D(2, ceil_mode=True),
                 lambda x: F.max_pool2d(x, 2, ceil_mode=True),
                 lambda g, x: F.max_pool2d_backward(g, x, 2, ceil_mode=True)),
    "avg-exclude-pad": (lambda: AvgPool2D(3, 2, padding=1, count_include_pad=False),
                        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                        lambda g, x: F.avg_pool2d_backward(g, x, 3, 2, 1, count_include_pad=False)),
    "avg": (lambda: AvgPool2D((2, 3)), lambda x: F.avg_pool2d(x, (2, 3)),
            lambda g, x: F.avg_pool2d_backward(g, x, (2, 3))),
    "lp": (lambda: LPPool2D(1.5, 2, stride=1), lambda x: F.lp_pool2d(x, 1.5, 2, 1),
           lambda g, x: F.lp_pool2d_backward(g, x, 1.5, 2, 1)),
    "global-avg": (GlobalAvgPool2D, lambda x: F.avg_pool2d(x, x.shape[2:]).reshape(x.shape[:2]),
                   lambda g, x: F.avg_pool2d_backward(g.reshape(g.shape + (1, 1)), x, x.shape[2:])),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make, forward, backward", POOL_LAYERS.values(), ids=POOL_LAYERS.keys())
def test_pool_layer_unchecked_matches_public_operators(make, forward, backward, dtype, rng):
    layer = built(make(), (2, 7, 6), dtype)
    for n in BATCHES:
        x = np.abs(rng.standard_normal((n, 2, 7, 6))).astype(dtype)  # lp's root needs x >= 0
        g = rng.standard_normal((n,) + layer.output_shape).astype(dtype)
        np.testing.assert_array_equal(layer.forward_unchecked(x), forward(x))
        np.testing.assert_array_equal(layer.backward_unchecked(g), backward(g, x))


def test_unchecked_entries_match_public_operators(rng):
    """The public operators are their checks followed by the unchecked entries: same bits."""
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    geometry, out_shape = F.conv2d_geometry(x.shape, w.shape, stride=2, padding="same", groups=2)
    y = F.conv2d_unchecked(x, w, b, geometry, out_shape, "relu")
    np.testing.assert_array_equal(y, F.conv2d(x, w, b, stride=2, padding="same", groups=2, activation="relu"))
    g = rng.standard_normal(out_shape).astype(np.float32)
    for got, expected in zip(F.conv2d_backward_unchecked(g, x, w, geometry, True, y),
                             F.conv2d_backward(g, x, w, stride=2, padding="same", groups=2,
                                               activation="relu", output=y)):
        np.testing.assert_array_equal(got, expected)
    pool = F.pool2d_geometry(x.shape, 3, 2, 1, True)
    np.testing.assert_array_equal(F.pool2d_unchecked("max", x, pool), F.max_pool2d(x, 3, 2, 1, True))
    gp = rng.standard_normal(pool.output_shape).astype(np.float32)
    np.testing.assert_array_equal(F.pool2d_backward_unchecked("avg", gp, x, pool, 0.0),
                                  F.avg_pool2d_backward(gp, x, 3, 2, 1, True, count_include_pad=False))


def test_geometry_is_computed_once_per_input_shape(monkeypatch, rng):
    """A layer recomputes its geometry only when its input's shape changes."""
    shapes = []
    public = F.conv2d_geometry

    def counting(x_shape, *args):
        shapes.append(tuple(x_shape))
        return public(x_shape, *args)

    monkeypatch.setattr(F, "conv2d_geometry", counting)
    layer = built(Conv2D(4, 3, padding="same"), (2, 6, 6), np.float64)
    for n in (4, 4, 4, 2, 2, 4):
        x = rng.standard_normal((n, 2, 6, 6))
        layer.forward_unchecked(x)
        layer.backward_unchecked(np.ones((n, 4, 6, 6)))
    assert shapes == [(4, 2, 6, 6), (2, 2, 6, 6), (4, 2, 6, 6)]
    layer.build((2, 5, 5), np.float64)  # a new build forgets the cached geometry
    layer.forward_unchecked(rng.standard_normal((4, 2, 5, 5)))
    assert shapes[-1] == (4, 2, 5, 5)


def test_threads_with_different_batch_sizes_share_a_layer(rng):
    """Threads calling one layer with different batch sizes each get their own input's result."""
    layer = built(Conv2D(8, 3, padding=1, activation="relu"), (4, 12, 12), np.float32)
    inputs = {n: rng.standard_normal((n, 4, 12, 12)).astype(np.float32) for n in (1, 2, 3, 5)}
    expected = {n: F.conv2d(x, layer.params["weight"], layer.params["bias"], padding=1, activation="relu")
                for n, x in inputs.items()}
    errors = []

    def work(n):
        try:
            for _ in range(40):
                if not np.array_equal(layer.forward_unchecked(inputs[n]), expected[n]):
                    errors.append(f"batch {n}: wrong output")
                    return
        except Exception as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in inputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def small_model():
    return cconv.Sequential([Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2),
                             Conv2D(6, 3, activation="tanh"), AvgPool2D(1), Flatten(), Dense(5), Tanh(),
                             Dense(3)], input_shape=(1, 8, 8), seed=0)


def test_model_checks_its_input_once_and_layers_take_the_unchecked_path(monkeypatch, rng):
    """Inside model.forward / backward and Trainer.fit no public (checking) operator runs, and the
    layers check nothing but the gradient that enters the model's backward pass (the loss's)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a public operator was called inside a model")

    checked = []
    layer_check = cconv.layers.Layer._check_array

    def counting(layer, array, *args):
        checked.append(type(layer).__name__)
        return layer_check(layer, array, *args)

    model = small_model()
    for name in ("conv2d", "conv2d_backward", "dense", "dense_backward", "max_pool2d", "max_pool2d_backward",
                 "avg_pool2d", "avg_pool2d_backward"):
        monkeypatch.setattr(F, name, refuse)
    monkeypatch.setattr(cconv.layers.Layer, "_check_array", counting)
    x = rng.standard_normal((6, 1, 8, 8))
    assert model.forward(x).shape == (6, 3)
    assert checked == []
    model.backward(np.ones((6, 3), np.float32))
    assert checked == ["Dense"]  # the last layer checks the gradient given to the model
    checked.clear()
    trainer = cconv.Trainer(model, loss="cross_entropy", optimizer=cconv.optim.SGD(lr=0.01))
    trainer.fit(x, np.arange(6) % 3, epochs=2, batch_size=4, verbose=0, seed=0)
    assert checked == ["Dense"] * 4  # once per step: 2 epochs of 2 batches


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.forward(np.zeros((2, 1, 8, 9))), ValueError, r"X must have shape \(N, 1, 8, 8\)"),
    (lambda m: m.forward(np.zeros((1, 8, 8))), ValueError, r"X must have shape \(N, 1, 8, 8\)"),
    (lambda m: m.forward(np.array([["a"]])), TypeError, "X must hold real numbers"),
    (lambda m: m.predict(np.zeros((2, 8, 8, 1))), ValueError, r"X must have shape \(N, 1, 8, 8\)"),
    (lambda m: cconv.Trainer(m, loss="cross_entropy").fit(np.zeros((4, 1, 8, 7)), np.zeros(4, int), verbose=0),
     ValueError, r"X must have shape \(N, 1, 8, 8\)"),
    (lambda m: m.layers[0].forward(np.zeros((2, 2, 8, 8), np.float32)), ValueError,
     r"Conv2D 'conv2d.*': x must have shape \(N, 1, 8, 8\)"),
    (lambda m: m.layers[0].forward(np.zeros((2, 1, 8, 8))), TypeError, "x has dtype float64 but the layer"),
    (lambda m: m.layers[-1].forward(np.zeros((2, 4), np.float32)), ValueError, r"x must have shape \(N, 5\)"),
])
def test_model_and_layers_refuse_bad_input_with_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(small_model())


X32 = np.zeros((2, 3, 6, 6), np.float32)
W32 = np.zeros((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv2d(X32, W32.astype(np.float64)), TypeError, "weight has dtype float64"),
    (lambda: F.conv2d(X32, W32[:, :2]), ValueError, "channel mismatch"),
    (lambda: F.conv2d(X32, W32, np.zeros(3, np.float32)), ValueError, "bias must have K=4"),
    (lambda: F.conv2d(X32, W32, stride=0), ValueError, "stride"),
    (lambda: F.conv2d(X32, W32, activation="tanh"), ValueError, "activation"),
    (lambda: F.conv2d_backward(np.zeros((2, 4, 3, 3), np.float32), X32, W32), ValueError, "grad_out has shape"),
    (lambda: F.conv2d_backward(np.zeros((2, 4, 4, 4), np.float32), X32, W32, activation="relu"), ValueError,
     "needs output="),
    (lambda: F.conv2d_geometry((2, 3, 6, 6), (4, 3, 7, 7)), ValueError, "larger than the padded input"),
    (lambda: F.dense(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32)), ValueError, "features"),
    (lambda: F.dense_backward(np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((3, 5))), ValueError,
     "grad_out has shape"),
    (lambda: F.max_pool2d(X32, 7), ValueError, "larger than the padded input"),
    (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 2, 2), np.float32), X32, 2), ValueError, "grad_out has shape"),
    (lambda: F.lp_pool2d(X32, 0, 2), ValueError, "norm_type"),
    (lambda: F.pool2d_geometry((2, 3, 0, 6), 2), ValueError, "non-empty height and width"),
])
def test_public_operators_still_refuse_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
