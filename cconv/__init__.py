"""cconv: small, fast convolutional networks on the CPU.

C kernels (OpenMP) compute convolution and pooling; `cconv.functional` exposes them on NumPy
arrays; the layer, model and trainer classes build and train whole CNNs on top of them.
"""
from cconv import functional
from cconv._config import show_config
from cconv._memory import release_memory
from cconv._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["functional", "get_num_threads", "set_num_threads", "show_config", "release_memory", "__version__"]

# Models, training and data (cconv.layers, cconv.model, cconv.trainer, ...).
from cconv import callbacks, datasets, initializers, layers, losses, optim  # noqa: E402
from cconv.model import Sequential, load_model  # noqa: E402
from cconv.trainer import History, Trainer  # noqa: E402

__all__ += ["Sequential", "Trainer", "History", "load_model", "layers", "optim", "datasets",
            "losses", "callbacks", "initializers"]
