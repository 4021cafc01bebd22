"""Tests of cconv.viz, `cconv train --plots` and the examples: every picture is a PNG of the
figure's size that is not blank (pixel variance above a threshold a blank figure stays under),
and what is drawn matches independent computations (each filter / activation map scaled by its
own min and max, the curves' values). Tests that draw skip when matplotlib is missing; the
optional-extra error and the lazy import are checked either way."""
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest

import cconv
from cconv import functional as F
from cconv.__main__ import main
from cconv.layers import Conv2D, Dense, Flatten, MaxPool2D

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
MIN_VARIANCE = 0.01  # of the grey pixel values in [0, 1]: a figure with only a title has 0.003,
                     # the pictures here 0.015 (curves) to 0.16 (activation maps)
MIN_CURVE_PIXELS = 0.005  # coloured fraction of a curves picture: its axes, text and legend alone
                          # give 0.001, the curves of 10 epochs 0.016


@pytest.fixture
def viz():
    pytest.importorskip("matplotlib")
    from cconv import viz
    return viz


def png_pixels(path, colour=False):
    """The pixels in [0, 1] of the PNG at `path`: grey (height, width), or with colour=True
    (height, width, 3) RGB."""
    from matplotlib import image as mpimg
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pixels = mpimg.imread(path)
    pixels = pixels[..., :3] if pixels.ndim == 3 else np.stack([pixels] * 3, axis=-1)
    return pixels if colour else pixels.mean(axis=-1)


def check_png(path, fig=None, size=None, dpi=100):
    """A non-blank PNG of `size` (width, height) pixels, or of the figure's size at `dpi`
    (to the pixel: Agg drops the fraction)."""
    grey = png_pixels(path)
    expected = fig.get_size_inches() * dpi if fig is not None else np.array(size)
    assert np.all(np.abs(np.array(grey.shape[::-1]) - expected) < 1), \
        f"{path}: {grey.shape[::-1]} pixels, expected {tuple(expected)}"
    assert grey.var() > MIN_VARIANCE, f"{path} looks blank (pixel variance {grey.var():.2g})"


def check_curves_png(path):
    """Training curves: 840 x 340 pixels, with coloured curves drawn (axes and text are grey)."""
    check_png(path, size=(840, 340))
    coloured = float(np.mean(png_pixels(path, colour=True).std(axis=-1) > 0.05))
    assert coloured > MIN_CURVE_PIXELS, f"{path} has no curves ({coloured:.2%} coloured pixels)"


def tiles_of(ax, count):
    """The first `count` tiles of the mosaic drawn on `ax`, found from its gaps alone: rows and
    columns of one colour (NaN in grey mosaics) that cross the whole picture."""
    image = ax.images[0].get_array()
    image = np.ma.filled(image.astype(float), np.nan) if np.ma.isMaskedArray(image) else image
    image = np.where(np.isnan(image), -1.0, np.asarray(image, float))
    flat = image.reshape(image.shape[:2] + (-1,))
    gap_rows = np.all(flat == flat[:, :1], axis=(1, 2))
    gap_cols = np.all(flat == flat[:1, :], axis=(0, 2))

    def runs(is_gap):  # (start, stop) of each run of non-gap indices
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ~is_gap, [0]]).astype(int)))
        return list(zip(edges[0::2], edges[1::2]))

    blocks = [image[r0:r1, c0:c1] for r0, r1 in runs(gap_rows) for c0, c1 in runs(gap_cols)]
    assert len(blocks) >= count, f"found {len(blocks)} tiles, expected {count}"
    return blocks[:count]


def per_tile_scaled(tiles):
    """Each tile mapped to [0, 1] by its own min and max (0 where constant)."""
    tiles = np.asarray(tiles, np.float64)
    axes = tuple(range(1, tiles.ndim))
    lo, hi = tiles.min(axis=axes, keepdims=True), tiles.max(axis=axes, keepdims=True)
    return np.where(hi > lo, (tiles - lo) / np.where(hi > lo, hi - lo, 1), 0.0)


def shrink(block, shape):
    """A tile enlarged by pixel repetition back to `shape` (h, w)."""
    step = block.shape[0] // shape[0]
    assert block.shape[:2] == (shape[0] * step, shape[1] * step)
    return block[::step, ::step]


def small_model(seed=0):
    return cconv.Sequential([Conv2D(6, 3, padding=1, activation="relu"), MaxPool2D(2),
                             Flatten(), Dense(10)], input_shape=(1, 8, 8), seed=seed)


# ----------------------------------------------------------------------------- without matplotlib

def run_python(code, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=cwd)


def test_import_cconv_does_not_import_matplotlib(tmp_path):
    result = run_python("import sys, cconv, cconv.filters, cconv.__main__\n"
                        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'", tmp_path)
    assert result.returncode == 0, result.stderr


def test_missing_matplotlib_names_the_extra(tmp_path):
    block = "import sys; sys.modules['matplotlib'] = None\n"  # makes `import matplotlib` fail
    result = run_python(block + "import cconv.viz", tmp_path)
    assert result.returncode != 0
    assert 'ImportError: cconv.viz needs matplotlib' in result.stderr
    assert 'pip install "cconv[viz]"' in result.stderr
    result = run_python(block + "from cconv.__main__ import main\n"
                                "sys.exit(main(['train', '--plots', 'plots', '--quiet']))", tmp_path)
    assert result.returncode == 1 and "Test accuracy" not in result.stdout  # fails before training
    assert "cconv[viz]" in result.stderr and result.stderr.startswith("cconv: error:")
    assert not (tmp_path / "plots").exists()


# ----------------------------------------------------------------------------- plot_filters

def test_blank_figure_fails_the_check(viz, tmp_path):
    """The threshold of check_png tells a drawn picture from an empty one."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(3.9, 4.3))
    fig.suptitle("48 filters 3x3 of conv2d_1")
    fig.savefig(tmp_path / "blank.png", dpi=100)
    with pytest.raises(AssertionError, match="blank"):
        check_png(tmp_path / "blank.png", fig)
    fig = viz.plot_history({"loss": [2.0, 1.0, 0.5], "val_loss": [1.5, 1.0, 0.8],
                            "accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.6, 0.8, 0.85]})
    fig.savefig(tmp_path / "curves.png", dpi=100)
    check_curves_png(tmp_path / "curves.png")
    for ax in fig.axes:
        for line in ax.lines:
            line.set_visible(False)
    fig.savefig(tmp_path / "no_curves.png", dpi=100)
    with pytest.raises(AssertionError, match="no curves"):
        check_curves_png(tmp_path / "no_curves.png")


@pytest.mark.parametrize("k, c", [(6, 1), (16, 3), (5, 4)])
def test_plot_filters(viz, tmp_path, rng, k, c):
    weights = rng.normal(size=(k, c, 3, 5)).astype(np.float32)
    fig = viz.plot_filters(weights, tmp_path / "f.png")
    check_png(tmp_path / "f.png", fig)
    tiles = tiles_of(fig.axes[0], k)
    shown = weights.transpose(0, 2, 3, 1) if c == 3 else weights[:, 0]  # RGB for 3 channels
    for tile, expected in zip(tiles, per_tile_scaled(shown)):
        np.testing.assert_allclose(shrink(tile, (3, 5)), expected, atol=1e-6)
    if c not in (1, 3):
        assert "input channel 0 of 4" in fig.axes[0].get_title()


def test_plot_filters_of_a_layer_a_model_and_one_channel(viz, tmp_path):
    model = small_model()
    weights = model[0].params["weight"]
    for source in (model, model[0]):
        fig = viz.plot_filters(source)
        assert "6 filters 3x3 of conv2d_1" in fig.axes[0].get_title()
        for tile, expected in zip(tiles_of(fig.axes[0], 6), per_tile_scaled(weights[:, 0])):
            np.testing.assert_allclose(shrink(tile, (3, 3)), expected, atol=1e-6)
    rgb = np.random.default_rng(1).normal(size=(4, 3, 2, 2))
    fig = viz.plot_filters(rgb, channel=2, dpi=50, path=tmp_path / "small.png")
    check_png(tmp_path / "small.png", fig, dpi=50)
    assert fig.axes[0].images[0].get_array().ndim == 2  # one channel: grey
    for tile, expected in zip(tiles_of(fig.axes[0], 4), per_tile_scaled(rgb[:, 2])):
        np.testing.assert_allclose(shrink(tile, (2, 2)), expected, atol=1e-6)


@pytest.mark.parametrize("source, error, word", [
    (np.zeros((3, 3)), ValueError, "(K, C, R, S)"),
    (np.full((2, 1, 3, 3), np.inf), ValueError, "infinite"),
    ("weights", TypeError, "layer_or_weights"),
    (Conv2D(4, 3), ValueError, "no weight"),
    (cconv.Sequential([Flatten(), Dense(3)], input_shape=(4,)), ValueError, "no Conv2D"),
])
def test_plot_filters_bad_input(viz, source, error, word):
    with pytest.raises(error, match=word.replace("(", r"\(").replace(")", r"\)")):
        viz.plot_filters(source)


def test_plot_filters_bad_channel(viz):
    for channel in (3, -1, 1.0, True):
        with pytest.raises(ValueError, match="channel"):
            viz.plot_filters(np.zeros((2, 3, 3, 3)), channel=channel)


# ----------------------------------------------------------------------------- plot_activations

def test_plot_activations(viz, tmp_path, rng):
    model = small_model()
    image = rng.random((1, 8, 8)).astype(np.float32)
    fig = viz.plot_activations(model, image, path=tmp_path / "a.png")
    check_png(tmp_path / "a.png", fig)
    assert model.training  # the mode is restored
    layer = model[0]
    expected = np.maximum(F.conv2d(image[None], layer.params["weight"], layer.params["bias"],
                                   padding=1), 0)[0]  # conv + ReLU, computed directly
    maps_ax = fig.axes[1]
    for tile, maps in zip(tiles_of(maps_ax, 6), per_tile_scaled(expected)):
        np.testing.assert_allclose(shrink(tile, (8, 8)), maps, atol=1e-5)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), per_tile_scaled(image)[0], atol=1e-6)
    assert "6 maps 8x8 after layer 0 (conv2d_1)" in " ".join(maps_ax.get_title().split())


def test_plot_activations_chooses_layers(viz, rng):
    model = small_model()
    batch = rng.random((1, 1, 8, 8)).astype(np.float32)
    pooled = F.max_pool2d(np.maximum(F.conv2d(batch, model[0].params["weight"],
                                              model[0].params["bias"], padding=1), 0), 2)[0]
    for layer in (1, -3, "max_pool2d_1", model[1]):
        fig = viz.plot_activations(model, batch, layer=layer)
        for tile, maps in zip(tiles_of(fig.axes[1], 6), per_tile_scaled(pooled)):
            np.testing.assert_allclose(shrink(tile, (4, 4)), maps, atol=1e-5)
    for layer, word in ((3, "outputs shape"), (7, "out of range"), ("nope", "not a layer"),
                        (Conv2D(2, 3), "not a layer")):
        with pytest.raises(ValueError, match=word):
            viz.plot_activations(model, batch, layer=layer)
    for x in (rng.random((2, 1, 8, 8)), rng.random((8, 8)), rng.random((1, 1, 9, 8))):
        with pytest.raises(ValueError, match="x"):
            viz.plot_activations(model, x)
    with pytest.raises(TypeError, match="model"):
        viz.plot_activations(model[0], batch)


def test_plot_activations_rgb_input_and_unbuilt_model(viz, tmp_path, rng):
    model = cconv.Sequential([Conv2D(5, 3, activation="relu")], seed=1)
    image = rng.random((3, 10, 12))
    fig = viz.plot_activations(model, image, path=tmp_path / "rgb.png")
    check_png(tmp_path / "rgb.png", fig)
    assert model.input_shape == (3, 10, 12)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               per_tile_scaled(image[None])[0].transpose(1, 2, 0), atol=1e-6)


# ----------------------------------------------------------------------------- plot_history

def test_plot_history(viz, tmp_path):
    model = small_model()
    (x, y), (xt, yt) = cconv.datasets.load_digits()
    history = cconv.Trainer(model).fit(x[:200], y[:200], epochs=3, validation_data=(xt[:50], yt[:50]),
                                       verbose=0, seed=0)
    fig = viz.plot_history(history, tmp_path / "h.png")
    check_curves_png(tmp_path / "h.png")  # two panels of 4.2 x 3.4 inches at 100 dpi
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, name in zip(fig.axes, ("loss", "accuracy")):
        train, val = ax.lines
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(train.get_ydata(), history.history[name])
        np.testing.assert_allclose(val.get_ydata(), history.history["val_" + name])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]


def test_plot_history_from_a_dict(viz, tmp_path):
    fig = viz.plot_history({"loss": [3.0, 2.0, 1.5, 1.2]}, tmp_path / "h.png", val_label="test")
    check_png(tmp_path / "h.png", size=(420, 340))  # one panel
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1
    fig = viz.plot_history({"val_loss": [1.0], "loss": [2.0], "accuracy": [0.5], "val_accuracy": [0.6]},
                           val_label="test")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert fig.axes[1].lines[1].get_label() == "test"
    for bad, error in (({}, ValueError), ({"loss": []}, ValueError), ([1.0, 2.0], TypeError)):
        with pytest.raises(error, match="history"):
            viz.plot_history(bad)


# ----------------------------------------------------------------------------- plot_images

def test_plot_images(viz, tmp_path, rng):
    grey = rng.normal(size=(30, 40))
    grey[0, 0] = 100.0  # one extreme pixel
    rgb = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    fig = viz.plot_images([grey, rgb, grey], ["a", "b", "c"], path=tmp_path / "i.png", columns=2,
                          robust=True, width=2.0)
    check_png(tmp_path / "i.png", fig)
    assert fig.get_size_inches()[0] == 4.0
    axes = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in axes] == ["a", "b", "c"]
    np.testing.assert_allclose(axes[0].images[0].get_clim(), np.percentile(grey, [1, 99]))
    np.testing.assert_array_equal(axes[1].images[0].get_array(), rgb)
    fig = viz.plot_images([grey])
    assert fig.axes[0].images[0].get_clim() == (grey.min(), grey.max())
    for images, titles in (([], None), ([np.zeros(5)], None), ([grey], ["a", "b"])):
        with pytest.raises(ValueError):
            viz.plot_images(images, titles)


def test_figures_use_agg_without_pyplot(viz, tmp_path):
    fig = viz.plot_filters(np.random.default_rng(0).normal(size=(4, 1, 3, 3)))
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
    result = run_python("import sys, numpy as np, cconv.viz as viz\n"
                        "viz.plot_history({'loss': [2.0, 1.0]})\n"
                        "assert 'matplotlib.pyplot' not in sys.modules", tmp_path)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- CLI and examples

def test_cli_plots(viz, tmp_path, capsys):
    plots = tmp_path / "plots" / "new"  # created when missing
    assert main(["train", "--epochs", "2", "--threads", "1", "--quiet", "--out",
                 str(tmp_path / "m.npz"), "--plots", str(plots)]) == 0
    text = capsys.readouterr().out
    assert "Test accuracy" in text and "Wrote" in text
    for name in ("filters.png", "activations.png", "history.png"):
        assert os.path.abspath(plots / name) in text
    check_png(plots / "filters.png", size=(480, 430))  # 48 tiles: 7 x 7, and the colour scale
    check_png(plots / "activations.png", size=(794, 465))  # the digit, 48 maps, the scale
    check_curves_png(plots / "history.png")
    model = cconv.load_model(tmp_path / "m.npz")
    assert model[0].params["weight"].shape == (48, 1, 3, 3)


def run_example(name):
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        pytest.skip("the examples are not next to the tests (an installed-wheel test run)")
    return runpy.run_path(path)


@pytest.mark.parametrize("name, size", [("sobel_edges.py", (780, 334)),       # 3 panels
                                        ("classic_filters.py", (780, 580))])  # 2 rows of 3
def test_photo_examples(viz, tmp_path, name, size):
    written = run_example(name)["main"](str(tmp_path))
    assert written == str(tmp_path / name.replace(".py", ".png"))
    check_png(written, size=size)


def test_digits_example_pictures(viz, tmp_path):
    cconv.set_num_threads(1)
    written = run_example("digits_filters.py")["main"](str(tmp_path), epochs=2)
    assert [os.path.basename(p) for p in written] == [
        "digits_filters_init.png", "digits_filters.png", "digits_activations.png", "digits_history.png"]
    for path, size in zip(written, [(430, 380), (430, 380), (706, 410)]):  # 32 tiles: 6 x 6, the scale
        check_png(path, size=size)
    check_curves_png(written[3])


def neighbour_correlation(weights):
    """Correlation of horizontally and vertically adjacent weights of (K, 1, R, S) filters,
    each filter's mean removed: about -0.1 for random 5x5 filters, high for smooth strokes."""
    w = weights[:, 0] - weights[:, 0].mean(axis=(1, 2), keepdims=True)
    a = np.concatenate([w[:, :, :-1].ravel(), w[:, :-1, :].ravel()])
    b = np.concatenate([w[:, :, 1:].ravel(), w[:, 1:, :].ravel()])
    return float(np.corrcoef(a, b)[0, 1])


def test_digits_example_learns_structured_filters(viz):
    cconv.set_num_threads(1)
    model, history, _, initial = run_example("digits_filters.py")["train"](epochs=10)
    assert history.history["val_accuracy"][-1] > 0.9
    assert neighbour_correlation(initial) < 0.1
    assert neighbour_correlation(model[0].params["weight"]) > 0.5


# ----------------------------------------------------------------------------- legibility

def test_titles_fit_inside_the_figure(viz, rng):
    model = cconv.Sequential([Conv2D(3, 3, padding=1, name="a_rather_long_convolution_name")],
                             input_shape=(1, 8, 8), seed=0)
    for fig in (viz.plot_activations(model, rng.random((1, 8, 8))), viz.plot_filters(model)):
        renderer = fig.canvas.get_renderer()
        fig.canvas.draw()
        for ax in fig.axes:
            box = ax.title.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= fig.bbox.width, ax.get_title()
        titles = " ".join(" ".join(ax.get_title() for ax in fig.axes).split())
        assert "(a_rather_long_convolution_name)" in titles or "of a_rather_long_convolution_name" in titles


def test_grey_mosaics_have_a_colour_scale(viz, rng):
    fig = viz.plot_filters(rng.normal(size=(4, 1, 3, 3)))
    scale = fig.axes[-1]
    assert [t.get_text() for t in scale.get_yticklabels()] == ["min", "max"]
    assert "each filter" in scale.get_ylabel()
    assert len(viz.plot_filters(rng.normal(size=(4, 3, 3, 3))).axes) == 1  # RGB: no scale


def test_float_rgb_images_in_0_to_255_are_drawn_not_clipped(viz, rng):
    rgb = rng.integers(0, 256, size=(30, 40, 3)).astype(np.float64)
    drawn = viz.plot_images([rgb]).axes[0].images[0].get_array()
    np.testing.assert_allclose(drawn, rgb / 255)
    wide = rng.normal(size=(5, 6, 3)) * 1000
    drawn = viz.plot_images([wide]).axes[0].images[0].get_array()
    assert drawn.min() == 0 and drawn.max() == 1


def test_history_ticks_are_whole_epochs(viz):
    fig = viz.plot_history({"loss": [2.0, 1.5, 1.2]})
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
