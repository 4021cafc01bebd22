"""Sobel edges of a photograph (Grace Hopper, from matplotlib's sample data).

    python examples/sobel_edges.py [OUT_DIR]      # writes OUT_DIR/sobel_edges.png (default: .)

The photo is turned to grey, then one call of cconv.filters.apply runs both Sobel kernels
(a (2, 1, 3, 3) bank: the x and y derivatives) through cconv.functional.conv2d; the edge
strength is the length of that gradient, sqrt(gx^2 + gy^2).
"""
import os
import sys

import numpy as np
from matplotlib import cbook
from matplotlib import image as mpimg

from cconv import filters, viz


def load_photo():
    """Grace Hopper's portrait, (600, 512, 3) uint8 (U.S. Navy photo, public domain)."""
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        return mpimg.imread(file)


def main(out_dir=".", dpi=100):
    photo = load_photo()
    gray = filters.grayscale(photo) / 255.0        # (600, 512) float32 in [0, 1]
    gx, gy = filters.apply(gray, filters.sobel())  # each (600, 512)
    edges = np.hypot(gx, gy)
    path = os.path.join(out_dir, "sobel_edges.png")
    viz.plot_images([photo, gx, edges], ["photo", "Sobel x: d/dx", "edge strength |gradient|"],
                    path=path, robust=True, width=2.6, dpi=dpi)
    return path


if __name__ == "__main__":
    print("wrote", main(*sys.argv[1:2]))
