"""PyTorch -> ONNX: the torch.onnx dynamo exporter on the source's ExportedProgram, then ``finish_onnx``.

A quantization-aware trained source (``source.fake_quantized``, int8 only) exports its fake-quant calls as
QuantizeLinear/DequantizeLinear pairs; the weights' QuantizeLinear is folded, so they are stored as int8.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from edgekit.converters._onnx_post import finish_onnx
from edgekit.converters._qat import exports_qat, finish_qdq_onnx

from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest

OPSET = 18
# Weights above this stay beside the model in <name>.onnx.data (protobuf files stop at 2 GiB).
_EXTERNAL_DATA_BYTES = 1 << 30


def convert(request: RouteRequest) -> RouteOutput:
    """Export ``request.source`` to ONNX opset 18 and save it at ``request.precision``."""
    import torch

    qat = exports_qat(request)
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
    if qat:
        output = finish_qdq_onnx(fp32_path, request, _store_int8_weights(fp32_path))
    else:
        output = finish_onnx(fp32_path, request)
    output.notes.insert(0, f"torch.onnx dynamo exporter, opset {OPSET}")
    if program is not source.exported_program:
        output.notes.insert(1, f"input shapes fixed to {request.static_shapes}")
    return output


def _weight_bytes(program: object) -> int:
    tensors = [*program.state_dict.values(), *program.constants.values()]  # type: ignore[attr-defined]
    return sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "element_size"))



def _store_int8_weights(path: Path) -> int:
    """Fold each QuantizeLinear of a constant weight into an int8 (or uint8) initializer; return how many.

    The exporter writes a fake-quantized weight as float initializer -> QuantizeLinear -> DequantizeLinear;
    the QuantizeLinear is computed here (ONNX's rounding: half to even, then saturation), so the file holds
    the integer weights and the graph computes exactly what it computed before.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    folded = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in initializers or len(node.input) < 3:
            continue
        if node.input[1] not in initializers or node.input[2] not in initializers:
            continue
        weight = numpy_helper.to_array(initializers[node.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
        zero_point = numpy_helper.to_array(initializers[node.input[2]])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * weight.ndim
        if scale.ndim:
            shape[axis] = -1
        info = np.iinfo(zero_point.dtype)
        values = np.clip(np.round(weight / scale.reshape(shape)) + zero_point.reshape(shape), info.min, info.max)
        graph.initializer.append(numpy_helper.from_array(values.astype(zero_point.dtype), node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    external = path.with_name(path.name + ".data")
    external.unlink(missing_ok=True)
    large = model.ByteSize() > _EXTERNAL_DATA_BYTES
    onnx.save_model(model, str(path), save_as_external_data=large, all_tensors_to_one_file=True, location=external.name)
    return len(folded)
