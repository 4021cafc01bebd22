"""The classic hand-designed kernels of cconv.filters applied to a photograph.

    python examples/classic_filters.py [OUT_DIR]  # writes OUT_DIR/classic_filters.png (default: .)

Blurs and sharpening run on the colour photo (apply filters each channel on its own: an
HxWx3 image in, HxWx3 out); the Laplacian and the Scharr edge strength on its grey version.
"""
import os
import sys

import numpy as np

from cconv import filters, viz

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sobel_edges import load_photo  # noqa: E402


def main(out_dir="."):
    face = load_photo()[40:340, 106:406] / 255.0   # (300, 300, 3): the face, in [0, 1]
    gray = filters.grayscale(face)
    pictures = {
        "photo": face,
        "box blur 9x9": filters.apply(face, filters.box_blur(9)),
        "Gaussian blur, sigma 3": filters.apply(face, filters.gaussian_blur(3.0)),
        "sharpen (amount 2)": np.clip(filters.apply(face, filters.sharpen(2.0)), 0, 1),
        "Laplacian": filters.apply(gray, filters.laplacian()),
        "Scharr edge strength": filters.gradient_magnitude(gray, "scharr"),
    }
    path = os.path.join(out_dir, "classic_filters.png")
    viz.plot_images(list(pictures.values()), list(pictures), path=path, columns=3, robust=True,
                    width=2.6)
    return path


if __name__ == "__main__":
    print("wrote", main(*sys.argv[1:2]))
