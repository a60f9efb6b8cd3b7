"""PyTorch -> OpenVINO IR: ``openvino.convert_model`` on the source's ExportedProgram, then ``finish_openvino``.

A quantization-aware trained source (``source.fake_quantized``, int8 only) converts to FakeQuantize operations
with its trained ranges; OpenVINO stores the weights they quantize as int8 when it saves the IR (no NNCF).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgekit.converters._openvino_post import finish_openvino
from edgekit.converters._qat import QAT_NOTE, exports_qat

from edgekit.causes import converter_error
from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest
from edgekit.specs import TensorSpec


def convert(request: RouteRequest) -> RouteOutput:
    """Convert ``request.source`` to OpenVINO with the source's I/O names, saved at ``request.precision``."""
    import openvino

    qat = exports_qat(request)
    source = request.source
    request.progress(0.05, "capturing the model with torch.export")
    program = source.exported_program  # the ExportedProgram itself: its .module() does not trace in OpenVINO
    request.progress(0.2, "converting with openvino.convert_model")
    try:
        model = openvino.convert_model(program)
    except Exception as exc:
        raise converter_error(
            "openvino.convert_model failed", exc,
            "OpenVINO's PyTorch frontend cannot convert the operations named above; replace them in forward(), "
            "or try the onnx route",
        ) from exc
    _name_ports(model.inputs, source.input_names, "inputs")
    _name_ports(model.outputs, source.output_names, "outputs")
    _set_input_shapes(model, source.spec.inputs, request.static_shapes)
    request.progress(0.6, f"saving OpenVINO IR at {request.precision}")
    if qat:
        output = finish_openvino(model, replace(request, precision="fp32"))
        output.notes[:0] = [QAT_NOTE, "OpenVINO FakeQuantize operations from the model's ranges, int8 weights, no NNCF"]
    else:
        output = finish_openvino(model, request)
    output.notes.insert(0, "openvino.convert_model on the torch.export program")
    return output


def _name_ports(ports: list, names: list[str], what: str) -> None:
    """Give the model's ports the source's tensor names (torch.export renames them)."""
    if len(ports) != len(names):
        raise ConversionError(
            f"the OpenVINO model has {len(ports)} {what} but the source has {len(names)}",
            "report this model to the edgekit maintainers",
        )
    for port, name in zip(ports, names, strict=True):
        port.get_tensor().set_names({name})


def _set_input_shapes(model: Any, specs: tuple[TensorSpec, ...], static_shapes: dict[str, tuple[int, ...]]) -> None:
    """Give each input the source's shape (openvino leaves them all dynamic), or the fixed one asked."""
    import openvino

    shapes = {}
    for spec in specs:
        dims = static_shapes.get(spec.name, spec.shape)
        shapes[spec.name] = openvino.PartialShape([-1 if d is None else int(d) for d in dims])
    try:
        model.reshape(shapes)
    except Exception as exc:
        raise ConversionError(
            f"the OpenVINO model does not take the input shapes {static_shapes or 'of the source'}: {first_line(exc)}",
            "check the static input shapes asked for",
        ) from exc

