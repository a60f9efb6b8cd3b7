"""ONNX -> TFLite: edgekit's ONNX importer to a ``torch.fx.GraphModule``, then the PyTorch -> TFLite conversion.

The importer (``edgekit.sources.onnx_import``) first checks every node against its op table, without
importing torch: an op, opset or attribute it does not handle is refused by name here, in well under a
second, and the build's other formats go on. Input shapes are made static (``request.static_shapes``, the
file's own dimensions, the calibration data's shapes, then batch 1); shape arithmetic folds to constants,
and the module goes through ``converters.torch_tflite.litert_convert`` unchanged: fp32, fp16, dynamic and
int8 (litert-torch's PT2E quantizer calibrated on ``request.calibration``).

int8 rescue: litert-torch's quantizer has no per-layer float exclusion this route can drive, so
``float_layers`` is refused (as on the PyTorch route) and ``accuracy_target`` rescue stops at scheme changes.
"""
from __future__ import annotations

from typing import Any

from edgekit.converters.torch_tflite import check_scheme, litert_convert, require_litert

from edgekit.errors import ConversionError
from edgekit.routes import RouteOutput, RouteRequest
from edgekit.sources.onnx_import import check_support


def convert(request: RouteRequest) -> RouteOutput:
    """Import the ONNX source to FX at static shapes and convert it with litert-torch."""
    model = request.source.model
    check_support(model)  # unsupported nodes refused by name before torch or litert-torch load
    require_litert("onnx")
    check_scheme(request)
    request.progress(0.05, "importing the ONNX graph to PyTorch FX")
    import torch

    from edgekit.sources.onnx_import import import_onnx

    shapes = static_shapes(request)
    imported = import_onnx(model, shapes)
    names = [info.name for info in imported.inputs]
    kwargs = dict(zip(names, imported.example_args(), strict=True))
    if request.calibration:
        first = request.calibration[0]
        kwargs = {name: torch.from_numpy(first[name].copy()) if name in first and tuple(first[name].shape) == tuple(value.shape)
                  else value for name, value in kwargs.items()}
    count = sum(1 for node in imported.module.graph.nodes if node.op == "call_function")
    notes = [f"ONNX opset {imported.opset} imported by edgekit to {count} PyTorch FX ops at static input shapes "
             + ", ".join(f"{info.name}{list(info.shape)}" for info in imported.inputs)]
    return litert_convert(imported.module, names, imported.output_names, kwargs, request, notes)


def static_shapes(request: RouteRequest) -> dict[str, tuple[int, ...]]:
    """A static shape per input: the build's fixed shapes, the file's, the calibration data's, then batch 1."""
    shapes: dict[str, tuple[int, ...]] = {}
    first: dict[str, Any] = request.calibration[0] if request.calibration else {}
    for spec in request.source.spec.inputs:
        if spec.name in request.static_shapes:
            shapes[spec.name] = tuple(request.static_shapes[spec.name])
        elif not spec.is_dynamic:
            shapes[spec.name] = tuple(int(d) for d in spec.shape)
        elif spec.name in first and len(first[spec.name].shape) == len(spec.shape):
            shapes[spec.name] = tuple(int(d) for d in first[spec.name].shape)
        else:
            shape = [1 if d is None and i == 0 else d for i, d in enumerate(spec.shape)]
            if None in shape:
                raise ConversionError(
                    f"the onnx->tflite route needs static shapes and input {spec.describe()} has dynamic dimensions",
                    f"give input_shapes={{'{spec.name}': [...]}} / --input-shape {spec.name}=..., or calibration data",
                )
            shapes[spec.name] = tuple(int(d) for d in shape)
    return shapes
