"""Tests of the model zoo (cconv.models) against the same networks written in torch.nn here:
parameter counts (the stated figures and torch's), and, with torch's weights and BatchNorm
statistics copied in, outputs and gradients in float64 (eval and training mode).

mobilenet_v2 needs DepthwiseConv2D and ReLU6, unet_tiny Conv2DTranspose; their tests skip only
where cconv.layers lacks those classes."""
import numpy as np
import pytest

import cconv
from cconv import models

torch = pytest.importorskip("torch")
nn = torch.nn


def has_layers(*names):
    return all(hasattr(cconv.layers, name) for name in names)


needs_mobilenet_layers = pytest.mark.skipif(
    not has_layers("DepthwiseConv2D", "ReLU6"),
    reason="cconv.layers has no DepthwiseConv2D / ReLU6 (they come from the layers branch)")
needs_unet_layers = pytest.mark.skipif(
    not has_layers("Conv2DTranspose"),
    reason="cconv.layers has no Conv2DTranspose (it comes from the layers branch)")


# ---------------------------------------------------------------------------- torch twins
def torch_lenet5(num_classes=10):
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.shortcut(x))


class TorchResNet20(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for block in range(3):
                blocks.append(BasicBlock(cin, cout, 2 if stage > 0 and block == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


def conv_bn_relu6(cin, cout, kernel, stride=1, groups=1):
    return [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU6()]


class InvertedResidual(nn.Module):
    """torchvision's block."""

    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = int(round(cin * expansion))
        self.use_residual = stride == 1 and cin == cout
        layers = conv_bn_relu6(cin, hidden, 1) if expansion != 1 else []
        layers += conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


def make_divisible(v, divisor=8):
    """torchvision's _make_divisible, written out again as the oracle."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class TorchMobileNetV2(nn.Module):
    """torchvision.models.MobileNetV2's layout with the stem and the second stage at stride 1."""

    def __init__(self, num_classes=10, width=0.5):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                    (6, 160, 3, 2), (6, 320, 1, 1)]
        cin = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        features = conv_bn_relu6(3, cin, 3, 1)
        for t, c, n, s in settings:
            cout = make_divisible(c * width)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features += conv_bn_relu6(cin, last, 1)
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class TorchUNetTiny(nn.Module):
    def __init__(self, in_channels=1, num_classes=2, base=16):
        super().__init__()

        def double(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())
        self.enc = nn.ModuleList([double(in_channels, base), double(base, 2 * base), double(2 * base, 4 * base)])
        self.bottom = double(4 * base, 8 * base)
        self.ups, self.decs = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(3)):
            channels = base << level
            self.ups.append(nn.ConvTranspose2d(2 * channels, channels, 2, stride=2))
            self.decs.append(double(2 * channels, channels))
        self.out = nn.Conv2d(base, num_classes, 1)

    def forward(self, x):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.ups, self.decs, reversed(skips)):
            x = dec(torch.cat([skip, up(x)], 1))
        return self.out(x)

    def modules_in_run_order(self):
        """The modules with parameters in the order the network runs them (the order of
        definition puts the decoder's up-convolutions apart)."""
        order = [m for enc in self.enc for m in enc] + list(self.bottom)
        for up, dec in zip(self.ups, self.decs):
            order += [up] + list(dec)
        return [m for m in order + [self.out] if list(m.parameters(recurse=False))]


# ---------------------------------------------------------------------------- helpers
def torch_count(net):
    return sum(p.numel() for p in net.parameters())


def with_params(module_list):
    return [m for m in module_list if list(m.parameters(recurse=False))]


def randomise_batchnorm(net, rng):
    """Non-trivial BatchNorm affine parameters and running statistics, so eval mode tests them."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, m.num_features)))
                m.bias.copy_(torch.from_numpy(rng.uniform(-0.2, 0.2, m.num_features)))
                m.running_mean.copy_(torch.from_numpy(rng.uniform(-0.2, 0.2, m.num_features)))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, m.num_features)))


def copy_from_torch(model, modules):
    """Copy the weights (and BatchNorm statistics) of torch `modules`, listed in the order of
    model.layers' layers that have parameters, into the cconv model."""
    layers = [layer for layer in model.layers if layer.params]
    assert len(layers) == len(modules), (len(layers), len(modules))
    state = {}
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    for layer, module in zip(layers, modules):
        i = index[id(layer)]
        if isinstance(module, nn.BatchNorm2d):
            assert type(layer).__name__ == "BatchNorm2D"
            state.update({f"{i}.gamma": module.weight, f"{i}.beta": module.bias,
                          f"{i}.running_mean": module.running_mean, f"{i}.running_var": module.running_var})
            continue
        weight = module.weight.detach()
        state[f"{i}.weight"] = weight.T if isinstance(module, nn.Linear) else weight
        if module.bias is not None:
            state[f"{i}.bias"] = module.bias
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in state.items()})
    return layers


def compare(model, net, modules, x, training, rng):
    """Forward (and backward, for a random output gradient) of the cconv model and the torch
    net on x, in training or eval mode, in float64."""
    net.train(training)
    model.train(training)
    tx = torch.from_numpy(x).requires_grad_()
    ty = net(tx)
    y = model.forward(x)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-9, atol=1e-10)
    g = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    dx = model.backward(g)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    layers = [layer for layer in model.layers if layer.params]
    for layer, module in zip(layers, modules):
        if isinstance(module, nn.BatchNorm2d):
            pairs = [("gamma", module.weight), ("beta", module.bias)]
        else:
            pairs = [("weight", module.weight)] + ([("bias", module.bias)] if module.bias is not None else [])
        for key, param in pairs:
            expected = param.grad.numpy()
            got = layer.grads[key].T if isinstance(module, nn.Linear) and key == "weight" else layer.grads[key]
            np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, err_msg=f"{layer.name}.{key}")
    if training:  # the running statistics moved the same way
        for layer, module in zip(layers, modules):
            if isinstance(module, nn.BatchNorm2d):
                np.testing.assert_allclose(layer.buffers["running_mean"], module.running_mean.numpy(), rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(layer.buffers["running_var"], module.running_var.numpy(), rtol=1e-10, atol=1e-12)
    net.zero_grad()


# ---------------------------------------------------------------------------- LeNet-5, ResNet-20
def test_lenet5_counts_and_matches_torch(rng):
    model = models.lenet5(dtype="float64", seed=0)
    net = torch_lenet5().double()
    assert model.count_params() == model.count_params(trainable_only=True) == 61706 == torch_count(net)
    assert model.input_shape == (1, 32, 32) and model.output_shape == (10,)
    modules = with_params(net)
    copy_from_torch(model, modules)
    compare(model, net, modules, rng.standard_normal((3, 1, 32, 32)), True, rng)
    assert models.lenet5(num_classes=4).output_shape == (4,)


def test_resnet20_structure_and_count():
    model = models.resnet20(seed=0)
    assert isinstance(model, cconv.Model)
    assert model.count_params(trainable_only=True) == 272474 == torch_count(TorchResNet20())
    bn_channels = sum(m.num_features for m in TorchResNet20().modules() if isinstance(m, nn.BatchNorm2d))
    assert model.count_params() == 272474 + 2 * bn_channels  # running mean and variance
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 21 and kinds.count("BatchNorm2D") == 21 and kinds.count("Add") == 9
    assert all(not layer.use_bias for layer in model.layers if kinds[model.layers.index(layer)] == "Conv2D")
    assert model.output_shape == (10,) and models.resnet20(num_classes=100).output_shape == (100,)
    projections = [layer for layer in model.layers if type(layer).__name__ == "Conv2D" and layer.kernel_size == (1, 1)]
    assert [(p.filters, p.stride) for p in projections] == [(32, (2, 2)), (64, (2, 2))]


@pytest.mark.parametrize("training", [False, True])
def test_resnet20_matches_torch_with_copied_weights(rng, training):
    model = models.resnet20(dtype="float64", seed=0)
    net = TorchResNet20().double()
    randomise_batchnorm(net, rng)
    modules = with_params(net.modules())
    copy_from_torch(model, modules)
    compare(model, net, modules, rng.standard_normal((2, 3, 32, 32)), training, rng)


def test_zoo_model_save_load_and_a_training_step(tmp_path, rng):
    model = models.resnet20(seed=1)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    trainer = cconv.Trainer(model, optimizer=cconv.optim.SGD(0.02, momentum=0.9))
    losses = [trainer.train_on_batch(x, y)["loss"] for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0]  # it can fit four images
    model.save(tmp_path / "resnet20.npz")
    loaded = cconv.load_model(tmp_path / "resnet20.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# ---------------------------------------------------------------------------- MobileNetV2, U-Net
def test_make_divisible_follows_torchvision():
    for v in [4, 8, 11.9, 12, 16 * 0.35, 24 * 0.5, 32 * 0.75, 96 * 0.5, 160 * 1.3, 1280 * 1.4, 3.2, 7.1]:
        assert models.make_divisible(v) == make_divisible(v), v


def test_missing_layers_are_named():
    if has_layers("DepthwiseConv2D", "ReLU6", "Conv2DTranspose"):
        pytest.skip("every layer the zoo needs is there")
    with pytest.raises(ImportError, match="needs the layers"):
        models.mobilenet_v2() if not has_layers("DepthwiseConv2D", "ReLU6") else models.unet_tiny()


@needs_mobilenet_layers
@pytest.mark.parametrize("width, count", [(0.5, 700490), (1.0, 2236682)])
def test_mobilenet_v2_counts(width, count):
    model = models.mobilenet_v2(width=width, seed=0)
    assert model.count_params(trainable_only=True) == count == torch_count(TorchMobileNetV2(width=width))
    assert model.output_shape == (10,)


@needs_mobilenet_layers
def test_mobilenet_v2_matches_torch_with_copied_weights(rng):
    model = models.mobilenet_v2(dtype="float64", seed=0)
    net = TorchMobileNetV2().double()
    randomise_batchnorm(net, rng)
    modules = with_params(net.modules())
    copy_from_torch(model, modules)
    compare(model, net, modules, rng.standard_normal((2, 3, 32, 32)), False, rng)  # eval: no dropout


@needs_unet_layers
def test_unet_tiny_counts_and_matches_torch(rng):
    model = models.unet_tiny(dtype="float64", seed=0, size=16)
    net = TorchUNetTiny().double()
    assert model.count_params() == 481762 == torch_count(net)
    assert model.output_shape == (2, 16, 16)
    modules = net.modules_in_run_order()
    copy_from_torch(model, modules)
    compare(model, net, modules, rng.standard_normal((2, 1, 16, 16)), True, rng)
    with pytest.raises(ValueError, match="multiple of 8"):
        models.unet_tiny(size=20)
    assert models.unet_tiny(in_channels=3, num_classes=5, base=4, size=8).output_shape == (5, 8, 8)


@needs_unet_layers
def test_unet_tiny_trains_per_pixel(rng):
    model = models.unet_tiny(base=4, size=16, seed=0)
    x = rng.random((8, 1, 16, 16), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    trainer = cconv.Trainer(model, optimizer=cconv.optim.Adam(1e-2), metrics=["accuracy", "mean_iou"])
    history = trainer.fit(x, y, epochs=8, batch_size=4, seed=0, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] > 0.7 and 0 < history["mean_iou"][-1] <= 1
