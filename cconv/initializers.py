"""Weight initializers: He (Kaiming) and Glorot (Xavier), uniform and normal, plus zeros/ones.

Every initializer is called as `init(shape, fan_in, fan_out, rng, dtype)` and returns a new
array; `rng` is a numpy.random.Generator, so a seeded model initializes identically every
time. For a conv kernel (K, C/groups, R, S): fan_in = C/groups*R*S, fan_out = K*R*S/groups.
"""
import numpy as np

__all__ = ["he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "zeros", "ones", "get",
           "NAMES"]


def he_uniform(shape, fan_in, fan_out, rng, dtype):
    """U(-b, b) with b = sqrt(6 / fan_in): variance 2 / fan_in, for ReLU networks."""
    bound = np.sqrt(6.0 / max(fan_in, 1))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def he_normal(shape, fan_in, fan_out, rng, dtype):
    """N(0, 2 / fan_in)."""
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(dtype)


def glorot_uniform(shape, fan_in, fan_out, rng, dtype):
    """U(-b, b) with b = sqrt(6 / (fan_in + fan_out)), for tanh / sigmoid networks."""
    bound = np.sqrt(6.0 / max(fan_in + fan_out, 1))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def glorot_normal(shape, fan_in, fan_out, rng, dtype):
    """N(0, 2 / (fan_in + fan_out))."""
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / max(fan_in + fan_out, 1))).astype(dtype)


def zeros(shape, fan_in, fan_out, rng, dtype):
    return np.zeros(shape, dtype=dtype)


def ones(shape, fan_in, fan_out, rng, dtype):
    return np.ones(shape, dtype=dtype)


_BY_NAME = {"he_uniform": he_uniform, "he_normal": he_normal, "glorot_uniform": glorot_uniform,
            "glorot_normal": glorot_normal, "zeros": zeros, "ones": ones}
NAMES = tuple(_BY_NAME)


def get(name):
    """The initializer function called `name` (ValueError for an unknown name)."""
    if not isinstance(name, str):
        raise TypeError(f"initializer must be a name such as 'he_uniform', got {type(name).__name__}")
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown initializer {name!r}; expected one of {', '.join(NAMES)}") from None
