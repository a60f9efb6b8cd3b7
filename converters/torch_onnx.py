"""PyTorch -> ONNX: the torch.onnx dynamo exporter on the source's ExportedProgram, then ``finish_onnx``."""
from __future__ import annotations

import contextlib
import io

from edgekit.converters._onnx_post import finish_onnx

from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest

OPSET = 18
# Weights above this stay beside the model in <name>.onnx.data (protobuf files stop at 2 GiB).
_EXTERNAL_DATA_BYTES = 1 << 30


def convert(request: RouteRequest) -> RouteOutput:
    """Export ``request.source`` to ONNX opset 18 and save it at ``request.precision``."""
    import torch

    source = request.source
    request.progress(0.05, "capturing the model with torch.export")
    program = source.program_for(request.static_shapes)
    fp32_path = request.out_dir / f"{request.stem}.export-fp32.onnx"
    request.progress(0.2, f"exporting to ONNX opset {OPSET}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
            torch.onnx.export(
                program,
                source.args_for(request.static_shapes),
                str(fp32_path),
                input_names=source.input_names,
                output_names=source.output_names,
                opset_version=OPSET,
                dynamo=True,
                external_data=_weight_bytes(program) > _EXTERNAL_DATA_BYTES,
                verbose=False,
            )
    except Exception as exc:
        raise ConversionError(
            f"torch.onnx.export failed: {type(exc).__name__}: {first_line(exc)}",
            "the message names the operator the exporter could not translate; replace it in forward() or "
            "register a custom translation, or try the openvino route",
        ) from exc
    request.progress(0.6, f"saving ONNX at {request.precision}")
    output = finish_onnx(fp32_path, request)
    output.notes.insert(0, f"torch.onnx dynamo exporter, opset {OPSET}")
    if program is not source.exported_program:
        output.notes.insert(1, f"input shapes fixed to {request.static_shapes}")
    return output


def _weight_bytes(program: object) -> int:
    tensors = [*program.state_dict.values(), *program.constants.values()]  # type: ignore[attr-defined]
    return sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "element_size"))

