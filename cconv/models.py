"""The model zoo: standard small CNNs, built and initialised, with the layouts (and so the
parameter counts) of their usual PyTorch definitions.

    lenet5(num_classes=10)                  (1, 32, 32) inputs; 61,706 parameters
    resnet20(num_classes=10)                (3, 32, 32); He et al. 2016's CIFAR ResNet-20; 272,474
    mobilenet_v2(num_classes=10, width=0.5) (3, 32, 32); torchvision's layout, for 32x32; 700,490
    unet_tiny(in_channels=1, num_classes=2, base=16)   (in_channels, H, W), H and W multiples of
                                            8; a three-level U-Net; 481,762

Each takes `dtype` and `seed` too, and returns a built model (Sequential for LeNet-5, a graph
cconv.Model for the others) whose output is logits: train it with the cross-entropy loss
(per pixel for the U-Net). The counts are of trainable parameters
(count_params(trainable_only=True)); BatchNorm's running statistics come on top.
"""
from cconv import layers as L
from cconv._args import as_int
from cconv.graph import Input, Model
from cconv.model import Sequential

__all__ = ["lenet5", "resnet20", "mobilenet_v2", "unet_tiny", "make_divisible"]


def _require(model, *names):
    """The layer classes `names` of cconv.layers; ImportError naming what is missing."""
    missing = [name for name in names if not hasattr(L, name)]
    if missing:
        raise ImportError(f"{model} needs the layers {', '.join(missing)}, which this cconv's "
                          f"cconv.layers does not have")
    return [getattr(L, name) for name in names]


def lenet5(num_classes=10, dtype="float32", seed=None):
    """LeNet-5 for (1, 32, 32) inputs with ReLU and max pooling: conv 5x5 6, pool, conv 5x5 16,
    pool, Dense 120, 84, num_classes (61,706 parameters for 10 classes)."""
    num_classes = as_int(num_classes, "num_classes", 1)
    return Sequential([
        L.Conv2D(6, 5, activation="relu"), L.MaxPool2D(2),
        L.Conv2D(16, 5, activation="relu"), L.MaxPool2D(2),
        L.Flatten(), L.Dense(120, activation="relu"), L.Dense(84, activation="relu"),
        L.Dense(num_classes)], input_shape=(1, 32, 32), dtype=dtype, seed=seed, name="lenet5")


def _conv_bn(x, filters, kernel_size, stride=1, relu=True):
    """Conv (no bias, 'same'-style padding (k - 1) // 2) + BatchNorm (+ ReLU)."""
    x = L.Conv2D(filters, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, use_bias=False)(x)
    x = L.BatchNorm2D()(x)
    return L.ReLU()(x) if relu else x


def resnet20(num_classes=10, dtype="float32", seed=None):
    """ResNet-20 for (3, 32, 32) images (He et al. 2016, section 4.2): conv 3x3 16 + BN + ReLU,
    three stages of three basic blocks (16, 32, 64 channels; stride 2 at the first block of the
    second and third), each block conv-BN-ReLU-conv-BN plus the shortcut, then ReLU; a 1x1
    stride-2 conv + BN projects the shortcut where the shape changes; global average pooling
    and Dense (272,474 parameters for 10 classes)."""
    num_classes = as_int(num_classes, "num_classes", 1)
    inputs = Input((3, 32, 32), dtype=dtype, name="image")
    x = _conv_bn(inputs, 16, 3)
    channels_in = 16
    for stage, channels in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            y = _conv_bn(x, channels, 3, stride)
            y = _conv_bn(y, channels, 3, relu=False)
            shortcut = x
            if stride != 1 or channels_in != channels:
                shortcut = _conv_bn(x, channels, 1, stride, relu=False)
            x = L.ReLU()(L.Add()([y, shortcut]))
            channels_in = channels
    outputs = L.Dense(num_classes)(L.GlobalAvgPool2D()(x))
    return Model(inputs, outputs, name="resnet20", seed=seed)


def make_divisible(value, divisor=8):
    """torchvision's _make_divisible: `value` rounded to the nearest multiple of `divisor` (at
    least divisor), and never more than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# (expansion t, output channels c, blocks n, stride s) of torchvision's MobileNetV2, with the
# stride of the second stage 1 instead of 2 for 32x32 inputs
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2(num_classes=10, width=0.5, dtype="float32", seed=None):
    """MobileNetV2 (Sandler et al. 2018) in torchvision's layout for (3, 32, 32) images: a 3x3
    stem conv (stride 1 here, 2 in torchvision) + BN + ReLU6; inverted residual blocks (1x1
    expansion conv + BN + ReLU6 when t > 1, 3x3 depthwise conv + BN + ReLU6, 1x1 projection
    conv + BN, plus the input when the stride is 1 and the channels stay); a 1x1 conv to
    1280 * max(1, width) channels + BN + ReLU6; global average pooling, Dropout(0.2), Dense.
    Channels are width times torchvision's, rounded by make_divisible (700,490 parameters at
    width 0.5, 2,236,682 at width 1, for 10 classes). Needs DepthwiseConv2D and ReLU6."""
    DepthwiseConv2D, ReLU6 = _require("mobilenet_v2", "DepthwiseConv2D", "ReLU6")
    num_classes = as_int(num_classes, "num_classes", 1)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 16:
        raise ValueError(f"width must be a number in (0, 16], got {width!r}")

    def conv_bn_relu6(x, filters, kernel_size):
        x = L.Conv2D(filters, kernel_size, padding=(kernel_size - 1) // 2, use_bias=False)(x)
        return ReLU6()(L.BatchNorm2D()(x))

    inputs = Input((3, 32, 32), dtype=dtype, name="image")
    channels = make_divisible(32 * width)
    x = conv_bn_relu6(inputs, channels, 3)
    for expansion, c, blocks, first_stride in MOBILENET_V2_STAGES:
        out_channels = make_divisible(c * width)
        for block in range(blocks):
            stride = first_stride if block == 0 else 1
            hidden = int(round(channels * expansion))
            y = conv_bn_relu6(x, hidden, 1) if expansion != 1 else x
            y = DepthwiseConv2D(3, stride=stride, padding=1, use_bias=False)(y)
            y = ReLU6()(L.BatchNorm2D()(y))
            y = L.BatchNorm2D()(L.Conv2D(out_channels, 1, use_bias=False)(y))
            x = L.Add()([x, y]) if stride == 1 and channels == out_channels else y
            channels = out_channels
    x = conv_bn_relu6(x, make_divisible(1280 * max(1.0, width)), 1)
    x = L.Dropout(0.2)(L.GlobalAvgPool2D()(x))
    outputs = L.Dense(num_classes)(x)
    return Model(inputs, outputs, name="mobilenet_v2", seed=seed)


def unet_tiny(in_channels=1, num_classes=2, base=16, dtype="float32", seed=None, size=64):
    """A small U-Net (Ronneberger et al. 2015) for (in_channels, size, size) images, size a
    multiple of 8: per level two 3x3 convs (padding 1, bias) + ReLU at base, 2 base, 4 base
    channels, each level followed by a 2x2 max pool; two 3x3 convs at 8 base channels at the
    bottom; on the way up a Conv2DTranspose(2x2, stride 2) halves the channels and doubles the
    size, the encoder's maps of that level are concatenated before it ([skip, upsampled] on
    the channel axis), and two 3x3 convs + ReLU follow; a 1x1 conv gives num_classes logits per
    pixel, (N, num_classes, size, size) (481,762 parameters for the defaults). Needs
    Conv2DTranspose."""
    (Conv2DTranspose,) = _require("unet_tiny", "Conv2DTranspose")
    in_channels = as_int(in_channels, "in_channels", 1)
    num_classes = as_int(num_classes, "num_classes", 1)
    base = as_int(base, "base", 1)
    size = as_int(size, "size", 8)
    if size % 8:
        raise ValueError(f"size must be a multiple of 8 (three 2x2 poolings), got {size}")

    def double_conv(x, filters):
        x = L.Conv2D(filters, 3, padding=1, activation="relu")(x)
        return L.Conv2D(filters, 3, padding=1, activation="relu")(x)

    inputs = Input((in_channels, size, size), dtype=dtype, name="image")
    skips, x = [], inputs
    for level in range(3):
        x = double_conv(x, base << level)
        skips.append(x)
        x = L.MaxPool2D(2)(x)
    x = double_conv(x, base << 3)
    for level in reversed(range(3)):
        x = Conv2DTranspose(base << level, 2, stride=2)(x)
        x = double_conv(L.Concatenate(axis=1)([skips[level], x]), base << level)
    outputs = L.Conv2D(num_classes, 1)(x)
    return Model(inputs, outputs, name="unet_tiny", seed=seed)
