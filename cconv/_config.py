"""show_config(): what this build of cconv contains and what it will use on this machine."""
import platform
import sys

import numpy as np

from cconv import _conv


def config():
    """A dict describing the build: version, OpenMP, SIMD paths built and chosen, threads, and the
    convolution algorithms built (conv2d's `algorithm=`)."""
    from cconv import __version__
    from cconv._threads import get_num_threads

    isa, mr, nr = _conv.simd_path()
    pixels = _conv.simd_pixel_tile()
    omp = _conv.openmp_version()
    return {
        "cconv": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
        "openmp": f"yes (_OPENMP {omp})" if omp else "no (serial build)",
        "threads": get_num_threads(),
        "simd_built": ",".join(_conv.simd_paths_built()),
        "simd_selected": f"{isa} (f32 micro-tile {mr}x{nr}"
                         + (f", pixel tile {pixels[0]}x{pixels[1]})" if pixels else ")"),
        "conv_algorithms": ",".join(_conv.ALGORITHMS),
    }


def show_config():
    """Print the build configuration: cconv, Python and NumPy versions, OpenMP, the SIMD paths
    built and selected, the thread count and the convolution algorithms."""
    for key, value in config().items():
        print(f"{key:>14}: {value}")
