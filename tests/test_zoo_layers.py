"""Tests of the model-zoo layers: DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, UpSampling2D,
ZeroPadding2D, GlobalMaxPool2D, the activations ReLU6, ELU, SiLU / Swish, Hardswish, GELU, and
BatchNorm2D on its C kernel, with the Conv2D + BatchNorm2D folding of Sequential.predict.

Each layer's forward and backward (input and parameter gradients) against PyTorch in float32 and
float64, and against float64 central differences; NumPy references where they are short; config,
JSON and save / load round trips; empty batches; argument errors."""
import json
import math

import numpy as np
import pytest

from reference import assert_close, numerical_gradient, rel_error

import cconv
from cconv.layers import (ELU, GELU, BatchNorm2D, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, Flatten,
                          GlobalMaxPool2D, Hardswish, ReLU, ReLU6, SeparableConv2D, SiLU, Swish, UpSampling2D,
                          ZeroPadding2D, layer_from_json, layer_to_json)
from cconv.layers.folding import FoldedConvBatchNorm, inference_steps

torch = pytest.importorskip("torch")
TF = torch.nn.functional

H = 1e-6  # finite-difference step (float64)
DTYPES = (np.float32, np.float64)


def built(layer, input_shape, dtype=np.float64, seed=0):
    layer.build(input_shape, dtype, np.random.default_rng(seed))
    return layer


def randomise(layer, rng):
    """Random values in every parameter (a zero bias would hide a missing bias gradient) and
    non-trivial BatchNorm running statistics."""
    for value in layer.params.values():
        value[...] = rng.standard_normal(value.shape)
    for name, value in layer.buffers.items():
        value[...] = rng.uniform(0.5, 2.0, value.shape) if "var" in name else rng.standard_normal(value.shape)


def crop_transpose(full, pads, out_hw):
    """The output of a transposed convolution with padding ((top, bottom), (left, right)), from its
    unpadded output `full`: rows [top, top + Ho) of `full` extended with zeros (the rows that
    output_padding adds), columns likewise."""
    (top, _), (left, _) = pads
    ho, wo = out_hw
    grown = TF.pad(full, (0, max(left + wo - full.shape[3], 0), 0, max(top + ho - full.shape[2], 0)))
    return grown[:, :, top:top + ho, left:left + wo]


def torch_conv_transpose(x, p, stride, pads, out_hw, dilation):
    full = TF.conv_transpose2d(x, p["weight"], None, stride=stride, dilation=dilation)
    y = crop_transpose(full, pads, out_hw)
    return y + p["bias"][:, None, None] if "bias" in p else y


# (id, layer factory, input shape, torch forward(x, params)); the params are torch tensors under
# the layer's own parameter names
CASES = [
    ("depthwise", lambda: DepthwiseConv2D(3, padding=1), (3, 6, 5),
     lambda x, p: TF.conv2d(x, p["weight"], p["bias"], padding=1, groups=3)),
    ("depthwise_multiplier_stride_dilation", lambda: DepthwiseConv2D((3, 2), stride=2, padding="same",
                                                                     depth_multiplier=2, dilation=(1, 2)),
     (2, 7, 8),
     lambda x, p: TF.conv2d(TF.pad(x, (0, 1, 1, 1)), p["weight"], p["bias"], stride=2, dilation=(1, 2), groups=2)),
    ("depthwise_relu6_no_bias", lambda: DepthwiseConv2D(3, use_bias=False, activation="relu6"), (2, 5, 5),
     lambda x, p: TF.relu6(TF.conv2d(x, p["weight"], None, groups=2))),
    ("depthwise_relu", lambda: DepthwiseConv2D(3, padding=1, activation="relu"), (2, 5, 5),
     lambda x, p: TF.relu(TF.conv2d(x, p["weight"], p["bias"], padding=1, groups=2))),
    ("separable", lambda: SeparableConv2D(4, 3, padding=1, depth_multiplier=2), (3, 5, 6),
     lambda x, p: TF.conv2d(TF.conv2d(x, p["depthwise_weight"], None, padding=1, groups=3),
                            p["pointwise_weight"], p["bias"])),
    ("separable_stride_relu", lambda: SeparableConv2D(3, (3, 3), stride=2, activation="relu", use_bias=False),
     (2, 7, 7),
     lambda x, p: TF.relu(TF.conv2d(TF.conv2d(x, p["depthwise_weight"], None, stride=2, groups=2),
                                    p["pointwise_weight"]))),
    ("separable_silu", lambda: SeparableConv2D(3, 3, padding="same", dilation=2, activation="swish"), (2, 6, 6),
     lambda x, p: TF.silu(TF.conv2d(TF.conv2d(x, p["depthwise_weight"], None, padding=2, dilation=2, groups=2),
                                    p["pointwise_weight"], p["bias"]))),
    ("transpose", lambda: Conv2DTranspose(3, 3), (2, 4, 5),
     lambda x, p: TF.conv_transpose2d(x, p["weight"], p["bias"])),
    ("transpose_stride_padding_output_padding", lambda: Conv2DTranspose(3, 3, stride=2, padding=1, output_padding=1),
     (2, 4, 5),
     lambda x, p: TF.conv_transpose2d(x, p["weight"], p["bias"], stride=2, padding=1, output_padding=1)),
    ("transpose_rect_dilation", lambda: Conv2DTranspose(2, (3, 2), stride=(3, 2), padding=(2, 1),
                                                        output_padding=(2, 0), dilation=(2, 1), use_bias=False),
     (3, 3, 4),
     lambda x, p: TF.conv_transpose2d(x, p["weight"], None, stride=(3, 2), padding=(2, 1), output_padding=(2, 0),
                                      dilation=(2, 1))),
    ("transpose_asymmetric_padding", lambda: Conv2DTranspose(2, 4, stride=2, padding=((1, 2), (0, 1))), (2, 3, 3),
     lambda x, p: torch_conv_transpose(x, p, 2, ((1, 2), (0, 1)), (5, 7), 1)),
    ("transpose_same", lambda: Conv2DTranspose(2, 3, stride=2, padding="same"), (2, 3, 4),
     lambda x, p: torch_conv_transpose(x, p, 2, ((0, 1), (0, 1)), (6, 8), 1)),
    ("transpose_same_small_kernel", lambda: Conv2DTranspose(2, 2, stride=3, padding="same", activation="relu"),
     (2, 3, 2),
     lambda x, p: TF.relu(torch_conv_transpose(x, p, 3, ((0, 0), (0, 0)), (9, 6), 1))),
    ("upsampling_nearest", lambda: UpSampling2D(2), (2, 3, 4),
     lambda x, p: TF.interpolate(x, scale_factor=2, mode="nearest")),
    ("upsampling_nearest_rect", lambda: UpSampling2D((3, 1)), (2, 3, 4),
     lambda x, p: TF.interpolate(x, scale_factor=(3, 1), mode="nearest")),
    ("upsampling_bilinear", lambda: UpSampling2D((2, 3), interpolation="bilinear"), (2, 4, 3),
     lambda x, p: TF.interpolate(x, scale_factor=(2, 3), mode="bilinear", align_corners=False)),
    ("zero_padding", lambda: ZeroPadding2D(((1, 2), (0, 3))), (2, 3, 4),
     lambda x, p: TF.pad(x, (0, 3, 1, 2))),
    ("zero_padding_int", lambda: ZeroPadding2D(2), (2, 3, 4), lambda x, p: TF.pad(x, (2, 2, 2, 2))),
    ("global_max_pool", lambda: GlobalMaxPool2D(), (3, 4, 5),
     lambda x, p: TF.adaptive_max_pool2d(x, 1).flatten(1)),
    ("relu6", lambda: ReLU6(), (2, 3, 4), lambda x, p: TF.relu6(x)),
    ("elu", lambda: ELU(alpha=0.7), (2, 3, 4), lambda x, p: TF.elu(x, alpha=0.7)),
    ("silu", lambda: SiLU(), (2, 3, 4), lambda x, p: TF.silu(x)),
    ("hardswish", lambda: Hardswish(), (2, 3, 4), lambda x, p: TF.hardswish(x)),
    ("gelu", lambda: GELU(), (2, 3, 4), lambda x, p: TF.gelu(x)),
    ("gelu_tanh", lambda: GELU(approximate="tanh"), (2, 3, 4), lambda x, p: TF.gelu(x, approximate="tanh")),
    ("batchnorm_train", lambda: BatchNorm2D(momentum=0.3, eps=1e-3), (3, 4, 5),
     lambda x, p: TF.batch_norm(x, None, None, p["gamma"], p["beta"], training=True, eps=1e-3)),
    ("conv_gelu", lambda: Conv2D(3, 3, padding=1, activation="gelu"), (2, 4, 4),
     lambda x, p: TF.gelu(TF.conv2d(x, p["weight"], p["bias"], padding=1))),
    ("conv_hardswish", lambda: Conv2D(3, 3, activation="hardswish"), (2, 4, 4),
     lambda x, p: TF.hardswish(TF.conv2d(x, p["weight"], p["bias"]))),
    ("conv_elu", lambda: Conv2D(3, 1, activation="elu"), (2, 4, 4),
     lambda x, p: TF.elu(TF.conv2d(x, p["weight"], p["bias"]))),
    ("dense_silu", lambda: Dense(4, activation="silu"), (6,),
     lambda x, p: TF.silu(x @ p["weight"] + p["bias"])),
    ("dense_relu6", lambda: Dense(4, activation="relu6"), (6,),
     lambda x, p: TF.relu6(x @ p["weight"] + p["bias"])),
]
IDS = [case[0] for case in CASES]


def layer_input(shape, rng, dtype, batch=3):
    x = rng.standard_normal((batch,) + shape) * 2
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, make, input_shape, reference", CASES, ids=IDS)
def test_forward_and_backward_match_torch(name, make, input_shape, reference, dtype, rng):
    layer = built(make(), input_shape, dtype)
    randomise(layer, rng)
    x = layer_input(input_shape, rng, dtype)
    y = layer.forward(x)
    g = rng.standard_normal(y.shape).astype(dtype)
    grad_x = layer.backward(g)

    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in layer.params.items()}
    ty = reference(tx, tp)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    assert_close(y, ty.detach().numpy(), dtype, "output")
    assert_close(grad_x, tx.grad.numpy(), dtype, "grad x")
    assert set(layer.grads) == set(layer.params)
    for key, value in tp.items():
        assert_close(layer.grads[key], value.grad.numpy(), dtype, f"grad {key}")
    assert y.shape == (3,) + layer.output_shape


def check_gradients(layer, x, rng, tol=1e-6):
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)
    layer.forward(x)
    analytic = {"x": layer.backward(g)}
    analytic.update({k: v.copy() for k, v in layer.grads.items()})
    numeric = {"x": numerical_gradient(lambda: layer.forward(x), x, g, H)}
    for key, param in layer.params.items():
        numeric[key] = numerical_gradient(lambda: layer.forward(x), param, g, H)
    assert set(analytic) == set(numeric)
    for key in numeric:
        err = rel_error(analytic[key], numeric[key])
        abs_err = float(np.max(np.abs(analytic[key] - numeric[key]), initial=0.0))
        assert err < tol or abs_err < 1e-8, f"{type(layer).__name__} d{key}: relative error {err:.2e}"


@pytest.mark.parametrize("name, make, input_shape, reference", CASES, ids=IDS)
def test_finite_differences_float64(name, make, input_shape, reference, rng):
    layer = built(make(), input_shape)
    randomise(layer, rng)
    x = layer_input(input_shape, rng, np.float64, batch=2)
    if isinstance(layer, (ReLU6, Hardswish, GELU, ELU)):
        x += np.where(np.abs(x) < 1e-3, 0.01, 0)  # keep off the kinks
    if name.startswith(("relu6", "depthwise_relu6", "hardswish")):
        x = np.where(np.abs(np.abs(x) - 3) < 1e-3, x + 0.01, x)
    check_gradients(layer, x, rng)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_finite_differences_and_torch_float32(mode, rng):
    layer = built(BatchNorm2D(momentum=0.2), (3, 4, 4))
    randomise(layer, rng)
    layer.train(mode == "train")
    x = rng.standard_normal((2, 3, 4, 4)) * 3 + 1
    check_gradients(layer, x, rng)

    layer32 = built(BatchNorm2D(momentum=0.2), (3, 4, 4), np.float32)
    layer32.train(mode == "train")
    ref = torch.nn.BatchNorm2d(3, momentum=0.2)
    if mode == "eval":
        ref.eval()
    x32 = x.astype(np.float32)
    tx = torch.tensor(x32, requires_grad=True)
    ty = ref(tx)
    g = rng.standard_normal(x.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    assert_close(layer32.forward(x32), ty.detach().numpy().astype(np.float64), np.float32)
    assert_close(layer32.backward(g), tx.grad.numpy().astype(np.float64), np.float32)
    assert_close(layer32.grads["gamma"], ref.weight.grad.numpy().astype(np.float64), np.float32)
    assert_close(layer32.grads["beta"], ref.bias.grad.numpy().astype(np.float64), np.float32)
    assert_close(layer32.buffers["running_mean"], ref.running_mean.numpy().astype(np.float64), np.float32)
    assert_close(layer32.buffers["running_var"], ref.running_var.numpy().astype(np.float64), np.float32)


def naive_batchnorm(x, gamma, beta, eps):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma[:, None, None] + beta[:, None, None], mean.ravel(), var.ravel()


def test_batchnorm_statistics_far_from_zero_and_one_value_per_channel(rng):
    # a large mean with a small spread: the two-pass statistics in double keep the variance
    layer = built(BatchNorm2D(momentum=0.5), (2, 3, 3), np.float32)
    x = (1000 + rng.standard_normal((4, 2, 3, 3)) * 0.01).astype(np.float32)
    y = layer.forward(x)
    expected, mean, var = naive_batchnorm(x.astype(np.float64), np.ones(2), np.zeros(2), 1e-5)
    assert_close(y, expected, np.float32, tol=2e-3)
    count = 4 * 9
    assert_close(layer.buffers["running_var"], 0.5 + 0.5 * var * count / (count - 1), np.float32)
    assert_close(layer.buffers["running_mean"], 0.5 * mean, np.float32)
    # a single value per channel: variance 0, running variance updated with 0 (count - 1 taken as 1)
    single = built(BatchNorm2D(), (2, 1, 1))
    out = single.forward(np.array([[[[3.0]], [[-1.0]]]]))
    np.testing.assert_array_equal(out, np.zeros((1, 2, 1, 1)))
    np.testing.assert_allclose(single.buffers["running_var"], [0.9, 0.9])
    np.testing.assert_allclose(single.buffers["running_mean"], [0.3, -0.1])


def test_batchnorm_results_do_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((4, 8, 64, 64)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        cconv.set_num_threads(threads)
        layer = built(BatchNorm2D(), (8, 64, 64), np.float32)
        y = layer.forward(x)
        results.append((y, layer.backward(g), layer.grads["gamma"], layer.buffers["running_var"].copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_backward_without_input_gradient(rng):
    layer = built(BatchNorm2D(), (3, 4, 4))
    x = rng.standard_normal((2, 3, 4, 4))
    g = rng.standard_normal(x.shape)
    layer.forward(x)
    layer.backward(g)
    expected = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    assert layer.backward(g, need_input_grad=False) is None
    for key, value in expected.items():
        np.testing.assert_array_equal(layer.grads[key], value)


def test_gelu_matches_math_erf():
    x = np.concatenate([np.linspace(-10, 10, 2001), [-40.0, -6.0, -1e-300, 0.0, 1e-8, 6.0, 40.0]])
    # Phi(v) = erfc(-v / sqrt(2)) / 2 = (1 + erf(v / sqrt(2))) / 2, in the form that does not cancel
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(cdf[x > -2], [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x[x > -2]], rtol=1e-14)
    exact = x * cdf
    slope = cdf + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    layer = built(GELU(), (x.size,))
    np.testing.assert_allclose(layer.forward(x[None]), exact[None], rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(layer.backward(np.ones((1, x.size))), slope[None], rtol=1e-13, atol=1e-300)
    layer32 = built(GELU(), (x.size,), np.float32)
    np.testing.assert_allclose(layer32.forward(x[None].astype(np.float32)), exact[None], rtol=1e-5, atol=1e-6)


def test_activations_against_numpy_formulas(rng):
    x = rng.standard_normal((2, 50)) * 5
    x[0, :6] = [0.0, 6.0, -3.0, 3.0, np.nan, -1e30]
    with np.errstate(invalid="ignore"):
        expected = {
            ReLU6: np.minimum(np.maximum(x, 0), 6),
            Hardswish: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
            SiLU: x * 0.5 * (1 + np.tanh(x / 2)),  # x * sigmoid(x)
            ELU: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1),
        }
    for cls, want in expected.items():
        got = built(cls(), (50,)).forward(x)
        np.testing.assert_allclose(got[:, 6:], want[:, 6:], rtol=1e-12)
        np.testing.assert_array_equal(np.isnan(got[:, 4]), [True, False])
    assert Swish is SiLU


def test_upsampling_and_padding_against_numpy(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    up = built(UpSampling2D((2, 3)), (3, 4, 5))
    np.testing.assert_array_equal(up.forward(x), x.repeat(2, axis=2).repeat(3, axis=3))
    g = rng.standard_normal((2, 3, 8, 15))
    np.testing.assert_allclose(up.backward(g), g.reshape(2, 3, 4, 2, 5, 3).sum(axis=(3, 5)))
    pad = built(ZeroPadding2D((1, 2)), (3, 4, 5))
    np.testing.assert_array_equal(pad.forward(x), np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2))))
    g = rng.standard_normal((2, 3, 6, 9))
    np.testing.assert_array_equal(pad.backward(g), g[:, :, 1:5, 2:7])
    pool = built(GlobalMaxPool2D(), (3, 4, 5))
    np.testing.assert_array_equal(pool.forward(x), x.max(axis=(2, 3)))


def test_depthwise_weight_layout_is_torch_groups(rng):
    layer = built(DepthwiseConv2D(3, depth_multiplier=3), (4, 6, 6))
    assert layer.params["weight"].shape == (12, 1, 3, 3) and layer.params["bias"].shape == (12,)
    assert layer.output_shape == (12, 4, 4) and layer.count_params() == 12 * 9 + 12
    sep = built(SeparableConv2D(5, 3, depth_multiplier=2), (4, 6, 6))
    assert {k: v.shape for k, v in sep.params.items()} == {
        "depthwise_weight": (8, 1, 3, 3), "pointwise_weight": (5, 8, 1, 1), "bias": (5,)}
    tr = built(Conv2DTranspose(5, (3, 2)), (4, 6, 6))
    assert tr.params["weight"].shape == (4, 5, 3, 2) and tr.output_shape == (5, 8, 7)


@pytest.mark.parametrize("name, make, input_shape, reference", CASES, ids=IDS)
def test_empty_batch(name, make, input_shape, reference):
    layer = built(make(), input_shape, np.float32)
    layer.train(True)
    y = layer.forward(np.zeros((0,) + input_shape, np.float32))
    assert y.shape == (0,) + layer.output_shape and y.dtype == np.float32
    grad_x = layer.backward(np.zeros(y.shape, np.float32))
    assert grad_x.shape == (0,) + input_shape
    for key, value in layer.grads.items():
        np.testing.assert_array_equal(value, np.zeros_like(layer.params[key]))


@pytest.mark.parametrize("name, make, input_shape, reference", CASES, ids=IDS)
def test_config_and_json_round_trip(name, make, input_shape, reference):
    layer = make()
    config = layer.get_config()
    again = type(layer).from_config(config)
    assert again.get_config() == config
    from_json = layer_from_json(json.loads(json.dumps(layer_to_json(layer))))
    assert type(from_json) is type(layer) and from_json.get_config() == config


@pytest.mark.parametrize("name, make, input_shape, reference", CASES, ids=IDS)
def test_save_and_load_a_model_holding_the_layer(name, make, input_shape, reference, tmp_path, rng):
    layers = [make()] if len(input_shape) == 1 else [make(), Flatten()]
    model = cconv.Sequential(layers + [Dense(2)], input_shape=input_shape, seed=1)
    for layer in model.layers:
        randomise(layer, rng)
    x = layer_input(input_shape, rng, np.float32)
    model.forward(x)  # BatchNorm's running statistics move away from their defaults
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = cconv.load_model(path)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    for key, value in model.named_parameters().items():
        np.testing.assert_array_equal(loaded.named_parameters()[key], value)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# ------------------------------------------------------------------- folding in predict

def folding_model(rng, dtype):
    model = cconv.Sequential([
        Conv2D(4, 3, padding=1), BatchNorm2D(), ReLU(),
        DepthwiseConv2D(3, use_bias=False), BatchNorm2D(),
        Conv2D(3, 1, activation="relu"), BatchNorm2D(),   # activation before the norm: not folded
        Flatten(), Dense(2)], input_shape=(2, 6, 6), dtype=dtype, seed=0)
    for layer in model.layers:
        randomise(layer, rng)
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_folds_conv_batchnorm_and_matches_the_layer_by_layer_output(dtype, rng):
    model = folding_model(rng, dtype)
    x = rng.standard_normal((5, 2, 6, 6)).astype(dtype)
    steps = inference_steps(model.eval().layers)
    kinds = [type(step) for step in steps]
    assert kinds == [FoldedConvBatchNorm, FoldedConvBatchNorm, Conv2D, BatchNorm2D, Flatten, Dense]
    assert steps[0].activation == "relu" and steps[1].activation is None
    expected = model.eval().forward(x)
    model.train()
    got = model.predict(x, batch_size=2)
    assert model.training  # predict puts the mode back
    assert_close(got, expected.astype(np.float64), dtype, tol=1e-4 if dtype == np.float32 else 1e-12)
    # the folded weights follow the parameters as they change
    model.layers[1].params["gamma"][...] *= 2
    assert_close(model.predict(x), model.eval().forward(x).astype(np.float64), dtype,
                 tol=1e-4 if dtype == np.float32 else 1e-12)


def test_no_folding_in_training_mode_or_without_a_following_batchnorm(rng):
    model = folding_model(rng, np.float64)
    model.train()
    assert all(not isinstance(step, FoldedConvBatchNorm) for step in inference_steps(model.layers))
    plain = [Conv2D(2, 3), ReLU(), BatchNorm2D()]
    built(plain[0], (1, 5, 5))
    assert inference_steps(plain) == plain


# ------------------------------------------------------------------- argument errors

@pytest.mark.parametrize("make, error, words", [
    (lambda: DepthwiseConv2D(3, 2), TypeError, "keyword"),
    (lambda: DepthwiseConv2D(3, depth_multiplier=0), ValueError, "depth_multiplier"),
    (lambda: DepthwiseConv2D(3, depth_multiplier=1.5), TypeError, "depth_multiplier"),
    (lambda: DepthwiseConv2D(0), ValueError, "kernel_size"),
    (lambda: DepthwiseConv2D(3, padding="full"), ValueError, "padding"),
    (lambda: SeparableConv2D(4, 3, 1), TypeError, "keyword"),
    (lambda: SeparableConv2D(0, 3), ValueError, "filters"),
    (lambda: SeparableConv2D(4, 3, activation="bogus"), ValueError, "activation"),
    (lambda: Conv2DTranspose(4, 3, output_padding=1), ValueError, "output_padding"),
    (lambda: Conv2DTranspose(4, 3, stride=2, output_padding=(0, 2)), ValueError, "smaller than the stride"),
    (lambda: Conv2DTranspose(4, 3, stride=2, padding="same", output_padding=1), ValueError, "same"),
    (lambda: Conv2DTranspose(4, 3, padding=-1), ValueError, "padding"),
    (lambda: Conv2DTranspose(4, 3, stride=0), ValueError, "stride"),
    (lambda: Conv2DTranspose("4", 3), TypeError, "filters"),
    (lambda: UpSampling2D(0), ValueError, "size"),
    (lambda: UpSampling2D(2, interpolation="bicubic"), ValueError, "interpolation"),
    (lambda: ZeroPadding2D(-1), ValueError, "padding"),
    (lambda: ZeroPadding2D(((1, 2, 3), (0, 0))), ValueError, "padding"),
    (lambda: ZeroPadding2D("same"), TypeError, "padding"),
    (lambda: GELU(approximate="erf"), ValueError, "approximate"),
    (lambda: ELU(alpha="1"), TypeError, "alpha"),
    (lambda: ELU(alpha=float("nan")), ValueError, "alpha"),
    (lambda: Conv2D(4, 3, activation="gelu_new"), ValueError, "activation"),
])
def test_bad_arguments(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="crops the whole output"):
        built(Conv2DTranspose(2, 1, padding=1), (3, 1, 1))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        built(UpSampling2D(), (3, 4))
    with pytest.raises(ValueError, match="larger than the padded input"):
        built(DepthwiseConv2D(5), (3, 4, 4))
    layer = built(GlobalMaxPool2D(), (3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        layer.forward(np.zeros((2, 3, 4, 5)))
