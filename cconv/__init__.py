"""cconv: small, fast convolutional networks on the CPU.

C kernels (OpenMP) compute convolution and pooling; `cconv.functional` exposes them on NumPy
arrays; the layer, model and trainer classes build and train whole CNNs on top of them.
"""
import os as _os

# Between parallel regions, GNU OpenMP's idle threads spin on their cores for about 300,000
# iterations before they sleep. A small network runs thousands of short regions, so on a shared
# machine those spins take the cores that other processes need (two trainings side by side were
# 10x slower each instead of 2x). A short spin shares the machine; much shorter, and a small
# network alone pays for its threads falling asleep between regions. Set before the extensions
# load the OpenMP runtime, which reads it once; the user's own setting wins.
if not any(name in _os.environ for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
    _os.environ["GOMP_SPINCOUNT"] = "3000"

try:  # the compiled extensions first, so that a missing build says what to do
    from cconv import _activation, _batchnorm, _conv, _memory, _pool  # noqa: F401
except ImportError as _exc:
    _here = _os.path.dirname(_os.path.abspath(__file__))
    if _os.path.exists(_os.path.join(_os.path.dirname(_here), "setup.py")):
        _hint = (f"you are importing cconv from its source folder {_here}, which holds the sources "
                 f"but not the compiled extensions (_conv, _pool, _memory, _batchnorm, _activation). Run "
                 f"Python from another folder to use the installed cconv, or build here with `pip install -e .` (or "
                 f"`python setup.py build_ext --inplace`)")
    else:
        _hint = (f"cconv's compiled extensions in {_here} cannot be loaded ({_exc}); reinstall "
                 f"cconv (pip install --force-reinstall cconv)")
    raise ImportError(_hint) from None

from cconv import functional
from cconv._config import show_config
from cconv._memory import release_memory
from cconv._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["functional", "get_num_threads", "set_num_threads", "show_config", "release_memory", "__version__"]

# Models, training and data (cconv.layers, cconv.model, cconv.trainer, ...).
from cconv import callbacks, datasets, filters, initializers, layers, losses, optim  # noqa: E402
from cconv.model import Sequential, load_model  # noqa: E402
from cconv.graph import Input, Model  # noqa: E402
from cconv.trainer import History, Trainer  # noqa: E402
from cconv import metrics, models  # noqa: E402

__all__ += ["Sequential", "Model", "Input", "Trainer", "History", "load_model", "layers", "optim",
            "datasets", "losses", "metrics", "models", "callbacks", "initializers", "filters"]

# Submodules imported on first use: viz and onnx need optional extras (matplotlib, onnx) and say
# which when they are missing; distributed and bench are rarely needed.
_LAZY_SUBMODULES = ("viz", "onnx", "distributed", "bench")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"cconv.{name}")
    raise AttributeError(f"module 'cconv' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
