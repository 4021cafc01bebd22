"""cconv.onnx: export cconv models to ONNX and load ONNX models into cconv (needs the `onnx`
package: pip install "cconv[onnx]").

    import cconv
    cconv.onnx.export(model, "model.onnx")          # standard ONNX ops, a dynamic batch axis
    model = cconv.onnx.load("model.onnx")           # a Sequential (or a graph Model), in eval mode

Both directions are tables of per-layer / per-op converters (`_export.EXPORTERS`,
`_import.IMPORTERS`); a layer or op without a converter, or one whose ONNX semantics would
differ from cconv's, is refused with a ValueError instead of being approximated.
"""
try:
    import onnx as _onnx  # noqa: F401
except ImportError as _exc:
    raise ImportError('cconv.onnx needs the onnx package, an optional extra of cconv: '
                      'pip install "cconv[onnx]" (or pip install onnx)') from _exc

from cconv.onnx._export import DEFAULT_OPSET, MIN_OPSET, export
from cconv.onnx._import import load

__all__ = ["export", "load", "DEFAULT_OPSET", "MIN_OPSET"]
