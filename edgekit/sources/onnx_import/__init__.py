"""ONNX -> PyTorch FX importer (edgekit's own), so ONNX models reach TFLite through litert-torch.

``import_onnx(model, static_shapes)`` returns a ``torch.fx.GraphModule`` that ``torch.export`` accepts
(strict and non-strict): input shapes are static, every shape-like tensor (Reshape/Expand/Tile shapes,
Slice/Squeeze axes, Resize scales, Pad pads, ...) is folded to Python ints at import time, initializers
become parameters/buffers, and each ONNX op has one small handler with its opset range (``ops/``).
``check_support(model)`` refuses by name, without importing torch, every node the importer cannot convert.
"""
from __future__ import annotations

from edgekit.sources.onnx_import.graph import check_support, refusals
from edgekit.sources.onnx_import.registry import OPS, UnsupportedOnnxError

__all__ = ["OPS", "UnsupportedOnnxError", "check_support", "import_onnx", "refusals", "supported_ops"]


def import_onnx(model, static_shapes=None):  # noqa: ANN001, ANN201 - typed in importer.import_onnx
    """See ``edgekit.sources.onnx_import.importer.import_onnx``."""
    from edgekit.sources.onnx_import.importer import import_onnx as run

    return run(model, static_shapes)


def supported_ops() -> dict[str, tuple[int, int]]:
    """ONNX op type -> (first, last) supported opset."""
    from edgekit.sources.onnx_import.ops import load_handlers

    load_handlers()
    return {name: (spec.since, spec.until) for name, spec in sorted(OPS.items())}
