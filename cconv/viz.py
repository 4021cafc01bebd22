"""cconv.viz: pictures of what a network does (needs matplotlib: pip install "cconv[viz]").

    from cconv import viz
    viz.plot_filters(model[0], "filters.png")             # the learned filters of a conv layer
    viz.plot_activations(model, x_test[0], path="maps.png") # what one image turns into at a layer
    viz.plot_history(history, "curves.png")               # loss / accuracy, training and validation
    viz.plot_images([photo, edges], ["photo", "edges"], path="edges.png")

Each function returns a matplotlib Figure and, when `path` is given, writes it there at `dpi`
(default 100) dots per inch, as PNG unless the name says otherwise; `title` and `cmap` (grey
by default) change the mosaics' title and colour map. The figures are drawn with the Agg renderer and are not
registered with pyplot, so no window opens, the pyplot backend is left alone and nothing
accumulates in pyplot's figure list; in Jupyter a returned Figure shows as the cell's result.
`import cconv` never imports this module or matplotlib.
"""
import math
import os
import textwrap

import numpy as np

try:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('cconv.viz needs matplotlib, an optional extra of cconv: '
                      'pip install "cconv[viz]" (or pip install matplotlib)') from exc

from cconv.layers import Conv2D, Layer
from cconv.layers.base import walk_layers
from cconv.model import Network

__all__ = ["plot_filters", "plot_activations", "plot_history", "plot_images"]

GAP_COLOR = "#4a7ab0"  # the lines between tiles: a colour no grey tile contains
COLOUR_SCALE_INCHES = 0.9  # the width a grey mosaic's colour scale adds to its figure


def _figure(width, height):
    """A Figure with an Agg canvas of width x height inches."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path, dpi):
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig


def _set_title(ax, title, inches, fontsize=10):
    """ax's title, its lines wrapped at spaces to fit `inches` (a panel's width), so that a long
    layer name is not clipped at the figure's edge."""
    chars = max(12, int(inches * 72 / (0.6 * fontsize)))  # about 0.6 em a character
    lines = [textwrap.fill(line, chars, break_long_words=False) for line in str(title).split("\n")]
    ax.set_title("\n".join(lines), fontsize=fontsize)


def _normalize_tiles(tiles):
    """Each tile (axis 0) scaled to [0, 1] by its own min and max; a constant tile becomes 0."""
    axes = tuple(range(1, tiles.ndim))
    lo = tiles.min(axis=axes, keepdims=True)
    span = tiles.max(axis=axes, keepdims=True) - lo
    return np.where(span > 0, (tiles - lo) / np.where(span > 0, span, 1.0), 0.0)


def _mosaic(tiles, columns):
    """(K, h, w) or (K, h, w, 3) tiles in [0, 1] -> one image of `columns` tiles per row, thin
    gaps between them; gap pixels are NaN (grey tiles) or the gap colour (RGB tiles). Small
    tiles are enlarged (each pixel repeated) first, so that the gaps stay thin beside them."""
    scale = max(1, math.ceil(24 / max(tiles.shape[1:3])))
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    k, h, w = tiles.shape[:3]
    rows = -(-k // columns)
    gap = max(2, max(h, w) // 16)
    extra = tiles.shape[3:]
    grid = np.empty((rows * columns, h + gap, w + gap) + extra)
    grid[...] = np.array(matplotlib.colors.to_rgb(GAP_COLOR)) if extra else np.nan
    grid[:k, :h, :w] = tiles
    grid = grid.reshape((rows, columns, h + gap, w + gap) + extra).swapaxes(1, 2)
    grid = grid.reshape((rows * (h + gap), columns * (w + gap)) + extra)
    return grid[:-gap, :-gap]


def _show_mosaic(ax, tiles, cmap, what):
    """Draw (K, h, w) grey or (K, h, w, 3) RGB tiles on `ax`, about as many columns as rows; a
    grey mosaic gets a colour scale from each tile's minimum to its maximum (`what`: 'filter',
    'map')."""
    image = _mosaic(_normalize_tiles(tiles), math.ceil(math.sqrt(tiles.shape[0])))
    if image.ndim == 3:
        ax.imshow(image, interpolation="nearest")
    else:
        cmap = matplotlib.colormaps[cmap].with_extremes(bad=GAP_COLOR)
        shown = ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        bar = ax.figure.colorbar(shown, ax=ax, ticks=[0.0, 1.0], shrink=0.8, aspect=15, pad=0.02)
        bar.ax.set_yticklabels(["min", "max"], fontsize=8)
        bar.set_label(f"each {what} from its own min to max", fontsize=8)
    ax.set_axis_off()


def _grid_inches(count, tile=0.5):
    """(width, height) in inches of a mosaic of `count` tiles, with room for a title."""
    columns = math.ceil(math.sqrt(count))
    rows = -(-count // columns)
    return max(2.5, tile * columns + 0.4), max(2.5, tile * rows + 0.8)


def _conv_weights(layer_or_weights):
    """(weights (K, C, R, S), name) from a Conv2D layer, a model (its first Conv2D) or an array."""
    obj = layer_or_weights
    if isinstance(obj, Network):
        convs = [layer for layer in walk_layers(obj.layers) if isinstance(layer, Conv2D)]
        if not convs:
            raise ValueError("layer_or_weights: the model has no Conv2D layer")
        obj = convs[0]
    if isinstance(obj, Layer):
        if "weight" not in obj.params:
            raise ValueError(f"layer_or_weights: layer {obj.name} has no weight (is it a built "
                             f"conv layer?)")
        name, weights = obj.name, obj.params["weight"]
    else:
        name, weights = None, obj
    try:
        weights = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"layer_or_weights must be a Conv2D layer, a model or a (K, C, R, S) "
                        f"array of numbers, got {type(obj).__name__}") from exc
    if weights.ndim != 4 or 0 in weights.shape:
        raise ValueError(f"layer_or_weights: conv weights must be (K, C, R, S), got shape {weights.shape}")
    if not np.all(np.isfinite(weights)):
        raise ValueError("layer_or_weights: the weights contain NaN or infinite values")
    return weights, name


def plot_filters(layer_or_weights, path=None, channel=None, title=None, cmap="gray", dpi=100):
    """The filters of a conv layer as a grid of small images, each scaled by its own min / max.

    layer_or_weights: a built Conv2D, a model (its first Conv2D), or weights (K, C, R, S).
    Filters over 3 input channels are drawn in RGB; any other depth in grey, showing input
    channel `channel` (default 0). channel=i also draws 3-channel filters in grey.
    """
    weights, name = _conv_weights(layer_or_weights)
    k, c, r, s = weights.shape
    if channel is not None:
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < c:
            raise ValueError(f"channel must be an int in [0, {c}), got {channel!r}")
    if c == 3 and channel is None:
        tiles, what = weights.transpose(0, 2, 3, 1), "RGB"
    else:
        shown = 0 if channel is None else int(channel)
        tiles, what = weights[:, shown], ("" if c == 1 else f"input channel {shown} of {c}")
    width, height = _grid_inches(k)
    fig = _figure(width + (0 if what == "RGB" else COLOUR_SCALE_INCHES), height)
    ax = fig.add_subplot()
    _show_mosaic(ax, tiles, cmap, "filter")
    if title is None:
        title = f"{k} filters {r}x{s}" + (f" of {name}" if name else "") + (f"\n{what}" if what else "")
    _set_title(ax, title, width)
    return _finish(fig, path, dpi)


def _layer_index(model, layer):
    """The index in model.layers of `layer`: None (the first Conv2D), an int, a name or a Layer."""
    layers = model.layers
    if layer is None:
        for index, item in enumerate(layers):
            if isinstance(item, Conv2D):
                return index
        raise ValueError("layer: the model has no Conv2D layer; pass layer= (an index or a name)")
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not -len(layers) <= layer < len(layers):
            raise ValueError(f"layer index {layer} is out of range for a model of {len(layers)} layers")
        return int(layer) % len(layers)
    for index, item in enumerate(layers):
        if item is layer or (isinstance(layer, str) and item.name == layer):
            return index
    names = ", ".join(item.name for item in layers)
    raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a layer of the model ({names})")


def _as_image(chw):
    """A (C, H, W) array as something imshow draws: grey (H, W) or RGB (H, W, 3) in [0, 1]."""
    image = chw.transpose(1, 2, 0) if chw.shape[0] == 3 else chw[0]
    return _normalize_tiles(image[None])[0]


def plot_activations(model, x, layer=None, path=None, title=None, cmap="gray", dpi=100):
    """The activation maps one image produces at a layer of `model`, one tile per channel (each
    scaled by its own min / max; a map that is 0 everywhere is black), next to the image.

    x: one image, shaped like the model's input (C, H, W) or as a batch of one (1, C, H, W).
    layer: an index into model.layers, a layer name, a layer object, or None for the first
    Conv2D. The model runs in eval mode (no dropout) up to and including that layer.
    """
    if not isinstance(model, Network):
        raise TypeError(f"model must be a cconv.Sequential or cconv.Model, got {type(model).__name__}")
    x = np.asarray(x)
    image_ndim = len(model.input_shape) if model.built else 3
    if x.ndim == image_ndim:
        x = x[None]
    if x.ndim != image_ndim + 1 or x.shape[0] != 1:
        raise ValueError(f"x must be one image (C, H, W) or a batch of one, got shape {x.shape}")
    x = model.check_input(x, "x")
    if not model.built:
        model.build(x.shape[1:])
    index = _layer_index(model, layer)
    was_training = model.training
    model.eval()
    try:
        out = model.layer_output(x, model.layers[index])
    finally:
        model.train(was_training)
    chosen = model.layers[index]
    if out.ndim != 4:
        raise ValueError(f"layer {chosen.name} outputs shape {out.shape[1:]}, not (C, H, W) maps; "
                         f"choose a conv or pooling layer")
    maps = out[0].astype(np.float64)
    width, height = _grid_inches(maps.shape[0], tile=0.55)
    fig = _figure(0.6 * height + width + COLOUR_SCALE_INCHES, height)
    image_ax, maps_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [0.6 * height, width]})
    picture = _as_image(x[0].astype(np.float64))
    image_ax.imshow(picture, cmap=None if picture.ndim == 3 else "gray", interpolation="nearest")
    image_ax.set_axis_off()
    _set_title(image_ax, f"input {'x'.join(map(str, x.shape[1:]))}", 0.6 * height)
    _show_mosaic(maps_ax, maps, cmap, "map")
    if title is None:
        title = f"{maps.shape[0]} maps {maps.shape[1]}x{maps.shape[2]} after layer {index} ({chosen.name})"
    _set_title(maps_ax, title, width)
    return _finish(fig, path, dpi)


def plot_history(history, path=None, val_label="validation", dpi=100):
    """Loss and accuracy per epoch (one panel per metric), training and, where logged,
    validation (named `val_label` in the legend).

    history: what Trainer.fit returns (a History), or a dict {'loss': [...], 'val_loss': [...],
    'accuracy': [...], ...}.
    """
    logs = history.history if hasattr(history, "history") else history
    if not isinstance(logs, dict):
        raise TypeError(f"history must be a cconv History or a dict of per-epoch lists, got "
                        f"{type(history).__name__}")
    names = [key for key in logs if not str(key).startswith("val_")]
    names.sort(key=lambda key: key != "loss")  # loss first, the rest in their logged order
    if not names or not all(len(logs[key]) for key in names):
        raise ValueError("history holds no epochs to plot")
    fig = _figure(4.2 * len(names), 3.4)
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        for key, label, style in ((name, "training", "-"), (f"val_{name}", val_label, "--")):
            if key in logs:
                values = np.asarray(logs[key], dtype=np.float64)
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o" if len(values) <= 30 else None,
                        markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.set_title(str(name), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _finish(fig, path, dpi)


def _displayable_rgb(image):
    """An RGB(A) image as imshow draws it right: integers as they are (0..255), floats in
    [0, 1] as they are, floats in 0..255 (an image loaded as float) divided by 255, and any
    other floats scaled from their min to their max (imshow would clip them to a blank panel)."""
    if image.dtype.kind != "f":
        return image
    lo, hi = float(np.nanmin(image)), float(np.nanmax(image))
    if lo >= 0 and hi <= 1:
        return image
    if lo >= 0 and hi <= 255:
        return image / 255.0
    return _normalize_tiles(image[None].astype(np.float64))[0]


def plot_images(images, titles=None, path=None, columns=None, cmap="gray", robust=False,
                width=3.2, dpi=100):
    """Pictures side by side (e.g. a photo and its filtered versions): HxW arrays drawn in
    `cmap`, scaled from their min to their max (robust=True: from their 1st to their 99th
    percentile, so a few extreme pixels do not wash out the rest), or HxWx3 RGB arrays (uint8,
    floats in [0, 1], floats in 0..255 divided by 255; other floats scaled from min to max). `columns` defaults to all in one row; `width` is each panel's width
    in inches."""
    images = [np.asarray(image) for image in images]
    if not images:
        raise ValueError("images is empty")
    for i, image in enumerate(images):
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))) or 0 in image.shape:
            raise ValueError(f"images[{i}] must be HxW or HxWx3, got shape {image.shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles has {len(titles)} entries for {len(images)} images")
    columns = len(images) if columns is None else int(columns)
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = -(-len(images) // columns)
    aspect = max(image.shape[0] / image.shape[1] for image in images)
    fig = _figure(width * columns, (width * aspect + 0.3) * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(images):]:
        ax.set_axis_off()
    for i, (ax, image) in enumerate(zip(axes, images)):
        ax.set_axis_off()
        if image.ndim == 3:
            ax.imshow(_displayable_rgb(image))
        else:
            limits = np.percentile(image, [1, 99]) if robust else (None, None)
            ax.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1])
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=10)
    return _finish(fig, path, dpi)
