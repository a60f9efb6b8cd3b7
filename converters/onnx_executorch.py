"""ONNX -> ExecuTorch (.pte): edgekit's ONNX importer to a ``torch.fx.GraphModule`` at static shapes, then
``torch.export`` and the PyTorch -> ExecuTorch lowering (``converters.torch_executorch.lower_to_pte``) unchanged.

As on the onnx->tflite route, every node is checked against the importer's op table first, without importing
torch: an op, opset or attribute it does not handle is refused by name in well under a second, and the build's
other formats go on. fp32 and int8 (pt2e XNNPACK quantizer, calibrated on ``request.calibration``);
``float_layers`` are refused for the same reason as on the PyTorch route.
"""
from __future__ import annotations

from edgekit.converters.onnx_tflite import static_shapes
from edgekit.converters.torch_executorch import lower_to_pte

from edgekit.routes import RouteOutput, RouteRequest
from edgekit.sources.onnx_import import check_support


def convert(request: RouteRequest) -> RouteOutput:
    """Import the ONNX source to FX at static shapes, export it and lower it to ``<stem>.pte``."""
    model = request.source.model
    check_support(model)  # unsupported nodes refused by name before torch or executorch load
    request.progress(0.05, "importing the ONNX graph to PyTorch FX")
    import torch

    from edgekit.sources.onnx_import import import_onnx

    imported = import_onnx(model, static_shapes(request))
    args = tuple(arg.contiguous() for arg in imported.example_args())
    request.progress(0.1, "capturing the imported graph with torch.export")
    program = torch.export.export(imported.module, args, strict=False)
    count = sum(1 for node in imported.module.graph.nodes if node.op == "call_function")
    notes = [f"ONNX opset {imported.opset} imported by edgekit to {count} PyTorch FX ops at static input shapes "
             + ", ".join(f"{info.name}{list(info.shape)}" for info in imported.inputs),
             "torch.export -> to_edge_transform_and_lower (XNNPACK partitioner) -> .pte"]
    names = ([info.name for info in imported.inputs], list(imported.output_names))
    return lower_to_pte(program, args, names, request, notes)
