"""Merge layers, which take a list of inputs: Add (element-wise sum) and Concatenate (along the
channel axis by default), for the skips, branches and concatenations of a graph Model.

    y = Add()([a, b])                # on cconv.Input's symbolic tensors, or on arrays
    y = Concatenate(axis=1)([a, b])
"""
import numpy as np

from cconv._args import as_float_array, as_int
from cconv.layers.base import Layer, as_model_dtype, as_shape


class Merge(Layer):
    """Base of the layers whose input is a list of at least two arrays (N,) + shape_i. Their
    input_shape is the tuple of those shapes; backward returns one gradient per input.
    Subclasses implement _merged_shape, _forward(list) and _backward (-> list)."""

    def build(self, input_shape, dtype=np.float32, rng=None):
        if not isinstance(input_shape, (list, tuple)) or not input_shape \
                or not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise TypeError(f"{self.describe()} takes a list of input shapes (one per input), got "
                            f"{input_shape!r}")
        shapes = tuple(as_shape(s, "input_shape") for s in input_shape)
        if len(shapes) < 2:
            raise ValueError(f"{self.describe()} merges at least two inputs, got {len(shapes)}")
        self.dtype = as_model_dtype(dtype)
        output_shape = tuple(int(d) for d in self._merged_shape(shapes))
        self.input_shape = shapes
        self.output_shape = output_shape
        return output_shape

    def _merged_shape(self, shapes):
        raise NotImplementedError

    def _inputs(self, xs):
        if not isinstance(xs, (list, tuple)):
            raise TypeError(f"{self.describe()} takes a list of arrays, e.g. {type(self).__name__}()([a, b]), "
                            f"got {type(xs).__name__}")
        return [as_float_array(x, f"inputs[{i}]") for i, x in enumerate(xs)]

    def forward(self, xs):
        """The merged output of the arrays xs, each (N,) + its input shape."""
        xs = self._inputs(xs)
        if not self.built:
            for i, x in enumerate(xs):
                if x.ndim < 2:
                    raise ValueError(f"{self.describe()}: inputs[{i}] must have a batch axis, got "
                                     f"shape {x.shape}")
            dtypes = {x.dtype for x in xs}
            if len(dtypes) != 1:
                raise TypeError(f"{self.describe()}: the inputs have different dtypes {sorted(map(str, dtypes))}")
            self.build([x.shape[1:] for x in xs], xs[0].dtype)
        if len(xs) != len(self.input_shape):
            raise ValueError(f"{self.describe()} was built for {len(self.input_shape)} inputs, got {len(xs)}")
        xs = [self._check_array(x, shape, f"inputs[{i}]", "input")
              for i, (x, shape) in enumerate(zip(xs, self.input_shape))]
        batches = {x.shape[0] for x in xs}
        if len(batches) != 1:
            raise ValueError(f"{self.describe()}: the inputs have different batch sizes {sorted(batches)}")
        return self.forward_unchecked(xs)

    def forward_unchecked(self, xs):
        self._forward_batch = xs[0].shape[0]
        return self._forward(xs)

    def get_config(self):
        return {"name": self.name}


class Add(Merge):
    """Add(): the element-wise sum of inputs of one shape, y = x_1 + x_2 + ... (a ResNet skip)."""

    def _merged_shape(self, shapes):
        if len(set(shapes)) != 1:
            raise ValueError(f"{self.describe()} adds inputs of one shape, got shapes "
                             f"{', '.join(map(str, shapes))}")
        return shapes[0]

    def _forward(self, xs):
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y

    def _backward(self, grad_out):
        # each input's gradient is grad_out itself: layers never write into their arguments
        return [grad_out] * len(self.input_shape)


class Concatenate(Merge):
    """Concatenate(axis=1): the inputs joined along `axis`, counted with the batch axis as 0 as
    in Keras (1 = the channels of (N, C, H, W) maps, a U-Net skip or a DenseNet block; negative
    counts from the end). The other dimensions must agree."""

    def __init__(self, axis=1, name=None):
        super().__init__(name)
        self.axis = as_int(axis, "axis", -64)
        if self.axis == 0:
            raise ValueError("Concatenate cannot join along axis 0, the batch axis")

    def _merged_shape(self, shapes):
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"{self.describe()}: the inputs have different ranks, shapes "
                             f"{', '.join(map(str, shapes))}")
        rank = ranks.pop()
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"{self.describe()}: axis {self.axis} is out of range for inputs of shape "
                             f"(N, {', '.join(map(str, shapes[0]))})")
        others = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(others) != 1:
            raise ValueError(f"{self.describe()}: the inputs must agree in every dimension but axis "
                             f"{self.axis}, got shapes {', '.join(map(str, shapes))}")
        self._sample_axis = axis
        self._splits = np.cumsum([s[axis] for s in shapes])[:-1].tolist()
        return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]

    def _forward(self, xs):
        return np.concatenate(xs, axis=self._sample_axis + 1)

    def _backward(self, grad_out):
        # the next layers' kernels take C-contiguous arrays
        return [np.ascontiguousarray(piece)
                for piece in np.split(grad_out, self._splits, axis=self._sample_axis + 1)]

    def get_config(self):
        return {"axis": self.axis, "name": self.name}
