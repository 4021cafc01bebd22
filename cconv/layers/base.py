"""The Layer base class: shapes, build, forward/backward checks, parameters, config.

A layer is built once for an input shape (without the batch axis), a dtype and a random
generator; building creates its parameters. `forward(x)` caches what `backward` needs;
`backward(grad_out)` stores the parameter gradients in `layer.grads` and returns dL/dx.
Layers never modify their `x` or `grad_out` arguments in place.

`forward` and `backward` check their argument; a model checks its input once and passes the
arrays between its layers through `forward_unchecked` / `backward_unchecked`. So `_forward`
must return an array of shape (N,) + output_shape in the layer's dtype, and `_backward` one of
(N,) + input_shape: the next layer takes it as it is. The layers that run C kernels call
cconv.functional's unchecked entries, with the kernels' geometry computed once per input shape
(`_geometry`).
"""
import math

import numpy as np

from cconv._args import as_bool, as_float_array

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_model_dtype(dtype):
    """np.float32 or np.float64 from a dtype-like, or a TypeError."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def as_shape(shape, name):
    """A tuple of positive ints from a shape-like (no batch axis)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints such as (1, 28, 28), got {shape!r}") from None
    if not dims or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                           for d in dims):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints such as (1, 28, 28), "
                         f"got {shape!r}")
    return tuple(int(d) for d in dims)


class ParamBudget:
    """Passed to Layer.build in place of the random generator when a model is loaded from a
    file: the parameters and buffers are allocated uninitialised (the file supplies their
    values), and only while together they fit in `limit` bytes, so a small file that declares
    a huge architecture is refused (ValueError) before anything big is allocated or filled."""

    def __init__(self, limit):
        self.left = limit

    def empty(self, shape, dtype):
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if nbytes > self.left:
            raise ValueError(f"the architecture needs more parameter data (an array of shape "
                             f"{tuple(shape)} {np.dtype(dtype).name} among others) than the file holds")
        self.left -= nbytes
        return np.empty(shape, dtype)


def new_array(rng, shape, dtype, initial):
    """A new parameter or buffer: `initial()` (its initial values), or, when a model is being
    loaded (rng is a ParamBudget), an uninitialised array of `shape` drawn from the budget."""
    if isinstance(rng, ParamBudget):
        return rng.empty(shape, dtype)
    return initial()


def walk_layers(layers):
    """Every layer in `layers`, nested ones (Residual) included, depth first."""
    for layer in layers:
        yield layer
        yield from walk_layers(layer.sublayers())


def is_symbolic(x):
    """Whether x is a symbolic tensor of cconv.graph (or a list holding one)."""
    if isinstance(x, (list, tuple)):
        return any(getattr(item, "is_symbolic_tensor", False) for item in x)
    return getattr(x, "is_symbolic_tensor", False)


def check_distinct(layers, where):
    """ValueError when one layer object appears twice in `layers` (nested ones included).

    A layer keeps what its backward needs from its last forward (its input, a mask, ...), so
    an object used at two places of a network would back-propagate the second use's values
    through the first: the gradients would be wrong. Each place needs its own instance."""
    seen = set()
    for layer in walk_layers(layers):
        if id(layer) in seen:
            raise ValueError(f"{where} uses the same {type(layer).__name__} object twice; a layer "
                             f"object remembers its last forward pass for backward, so it can sit at "
                             f"one place only: create a new instance for each place, e.g. "
                             f"{type(layer).__name__}() again")
        seen.add(id(layer))


class Layer:
    """Base class of every layer. Subclasses implement _build, _forward, _backward, get_config."""

    def __init__(self, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name
        self.training = True
        self.input_shape = None
        self.output_shape = None
        self.dtype = None
        self._params = {}
        self._grads = {}
        self._buffers = {}
        self._forward_batch = None  # batch size of the last forward, for backward's check
        self._geometry_cache = (None, None)  # (input shape, its geometry); see _geometry

    # -- parameters -----------------------------------------------------------------------
    @property
    def params(self):
        """Trainable parameters: name -> array (updated in place by the optimizers)."""
        return self._params

    @property
    def grads(self):
        """Gradients of the last backward pass: name -> array, same names as params."""
        return self._grads

    @property
    def buffers(self):
        """Non-trainable state (e.g. BatchNorm running statistics): name -> array."""
        return self._buffers

    def count_params(self, trainable_only=False):
        """Number of parameter values, with the non-trainable buffers unless trainable_only."""
        total = sum(int(p.size) for p in self.params.values())
        if not trainable_only:
            total += sum(int(b.size) for b in self.buffers.values())
        return total

    @property
    def built(self):
        return self.output_shape is not None

    # -- modes ----------------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (Dropout drops, BatchNorm uses batch statistics); returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Inference mode; returns self."""
        return self.train(False)

    # -- build / forward / backward -------------------------------------------------------
    def build(self, input_shape, dtype=np.float32, rng=None):
        """Create the parameters for inputs of shape (N,) + input_shape; returns the output shape."""
        input_shape = as_shape(input_shape, "input_shape")
        dtype = as_model_dtype(dtype)
        if rng is None:
            rng = np.random.default_rng()
        self.dtype = dtype
        self._geometry_cache = (None, None)
        output_shape = tuple(int(d) for d in self._build(input_shape, rng))
        if not output_shape or min(output_shape) < 1:
            raise ValueError(f"{self.describe()}: input shape {input_shape} gives the empty output "
                             f"shape {output_shape}")
        self.input_shape = input_shape
        self.output_shape = output_shape
        return output_shape

    def forward(self, x):
        """The layer's output for a batch x of shape (N,) + input_shape."""
        if not self.built:
            x = as_float_array(x, "x")
            if x.ndim < 2:
                raise ValueError(f"{self.describe()}: x must have a batch axis, got shape {x.shape}")
            self.build(x.shape[1:], x.dtype)
        x = self._check_array(x, self.input_shape, "x", "input")
        self._forward_batch = x.shape[0]  # forward_unchecked's body, written out to spare a call
        return self._forward(x)

    def backward(self, grad_out, need_input_grad=True):
        """dL/dx for grad_out = dL/dy; stores the parameter gradients in self.grads.

        With need_input_grad=False (a network's first layer) only the parameter gradients are
        computed and None is returned."""
        need_input_grad = as_bool(need_input_grad, "need_input_grad")
        if self._forward_batch is None:
            raise RuntimeError(f"{self.describe()}: backward called before forward")
        grad_out = self._check_array(grad_out, self.output_shape, "grad_out", "output")
        if grad_out.shape[0] != self._forward_batch:
            raise ValueError(f"{self.describe()}: grad_out has batch size {grad_out.shape[0]} but "
                             f"the last forward had {self._forward_batch}")
        return self._backward(grad_out) if need_input_grad else self._backward_params(grad_out)

    def __call__(self, x):
        """forward(x) on arrays. On the symbolic tensors of cconv.Input (the functional API,
        `y = Conv2D(16, 3)(x)`) it records the call as a node of a graph instead, builds the
        layer for that input's shape, and returns the output's symbolic tensor."""
        if is_symbolic(x):
            from cconv.graph import connect  # the graph module builds on the layers
            return connect(self, x)
        return self.forward(x)

    def forward_unchecked(self, x):
        """forward without the checks, for a built layer and an x that is already an array of
        (N,) + input_shape in the layer's dtype (a model's checked input, or the output of the
        layer before)."""
        self._forward_batch = x.shape[0]
        return self._forward(x)

    def backward_unchecked(self, grad_out, need_input_grad=True):
        """backward without the checks, for a grad_out that is already an array of the last
        forward's batch and (N,) + output_shape in the layer's dtype (the gradient the layer
        after returned)."""
        return self._backward(grad_out) if need_input_grad else self._backward_params(grad_out)

    def _check_array(self, x, shape, name, what):
        x = as_float_array(x, name)
        if x.shape[1:] != shape or x.ndim != len(shape) + 1:
            raise ValueError(f"{self.describe()}: {name} must have shape (N, "
                             f"{', '.join(map(str, shape))}) ({what} shape {shape} after the batch "
                             f"axis), got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"{self.describe()}: {name} has dtype {x.dtype} but the layer was built "
                            f"for {self.dtype}")
        return x

    def _build(self, input_shape, rng):
        """Create parameters; return the output shape. Default: shape-preserving, no parameters."""
        return input_shape

    def _image_shape(self, input_shape):
        """input_shape as (C, H, W), for the layers that take images; ValueError otherwise."""
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects (C, H, W) inputs, got input shape {input_shape}")
        return input_shape

    def _geometry(self, x_shape):
        """_make_geometry(x_shape), computed again only when x_shape differs from the last one's
        (in a model only the batch size changes, and rarely). The cache is one immutable (shape,
        geometry) tuple replaced in one assignment, so threads calling the layer with different
        batch sizes each get the geometry of their own input."""
        shape, geometry = self._geometry_cache
        if shape != x_shape:
            geometry = self._make_geometry(x_shape)
            self._geometry_cache = (x_shape, geometry)
        return geometry

    def _make_geometry(self, x_shape):
        """What the layer's kernels need to know about an input of shape x_shape (layers that
        call _geometry implement it)."""
        raise NotImplementedError

    def _forward(self, x):
        raise NotImplementedError

    def _backward_params(self, grad_out):
        """Parameter gradients only (see backward); layers that can skip dL/dx override this."""
        self._backward(grad_out)

    def _backward(self, grad_out):
        raise NotImplementedError

    # -- description / serialisation ------------------------------------------------------
    def get_config(self):
        """The constructor arguments (JSON-serialisable) that rebuild this layer."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def describe(self):
        return f"{type(self).__name__}" + (f" '{self.name}'" if self.name else "")

    def sublayers(self):
        """Layers nested inside this one (Residual); empty for plain layers."""
        return []

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"
