"""Keras 2 / Keras 3 -> ONNX: tf2onnx on the serving function (named inputs and outputs), then ``finish_onnx``.

A quantization-aware trained model's FakeQuant ops become QuantizeLinear/DequantizeLinear pairs (tf2onnx);
its weights, which TensorFlow folds through their fake quantization, are stored back as int8 (QDQ ONNX).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from edgekit.converters._keras_common import (
    conversion_step,
    input_signature,
    tf_function,
    warm_up,
)
from edgekit.converters._onnx_post import finish_onnx
from edgekit.converters._qat import exports_qat, finish_qdq_onnx
from edgekit.converters._tf_freeze import convert_frozen, extra_inputs

from edgekit.routes import RouteOutput, RouteRequest

OPSET = 17


def convert(request: RouteRequest) -> RouteOutput:
    """Write ``<stem>.onnx`` at ``request.precision``; input and output names are the source's."""
    import tf2onnx

    qat = exports_qat(request)
    request.progress(0.05, "running the model once")
    warm_up(request)
    fp32 = request.out_dir / f"{request.stem}.fp32-intermediate.onnx"
    request.progress(0.15, f"converting with tf2onnx (opset {OPSET})")
    with conversion_step(
        "tf2onnx",
        "the message names the TensorFlow op tf2onnx could not convert; replace that layer or try the tflite route",
    ):
        tf2onnx.convert.from_function(
            tf_function(request), input_signature=input_signature(request), opset=OPSET, output_path=str(fp32)
        )
        dangling = extra_inputs(fp32, request.source.input_names)
        if dangling:  # captured tensors tf2onnx did not freeze: freeze them ourselves and convert again
            frozen = convert_frozen(tf_function(request), input_signature(request), OPSET, fp32)
    _stabilize_names(fp32)
    request.progress(0.6, f"saving ONNX at {request.precision}")
    if qat:
        output = finish_qdq_onnx(fp32, request, _store_int8_weights(fp32))
    else:
        output = finish_onnx(fp32, request)
    output.notes.insert(0, f"tf2onnx {tf2onnx.__version__}, opset {OPSET}, NHWC layout kept")
    if dangling:
        output.notes.insert(1, f"{frozen} captured tensor(s) frozen into constants (tf2onnx left them as inputs: "
                               f"{', '.join(dangling[:3])})")
    return output


_GENERATED = re.compile(r"^(.*?)__\d+(:\d+)?$")  # "const_fold_opt__63", "Conv__37:0", "unk__128"


def _stabilize_names(path: Path) -> None:
    """Rename what tf2onnx numbers from process-wide counters (constants, node outputs, node names,
    dynamic dimensions) by its place in the graph, order initializers by first use and drop the traced
    function's numbered name, so that rebuilds are byte-identical."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    first_use: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for position, name in enumerate(node.input):
            first_use.setdefault(name, index * 64 + position)
    initializers = sorted(graph.initializer, key=lambda t: (first_use.get(t.name, 1 << 62), t.name))
    renames: dict[str, str] = {}
    for index, tensor in enumerate(initializers):
        if _GENERATED.match(tensor.name):  # the stem too can vary: deduplicated constants keep any one name
            renames[tensor.name] = f"const__c{index}"
    for node in graph.node:
        for output in node.output:
            match = _GENERATED.match(output)
            if match:
                renames[output] = f"{match.group(1)}__t{len(renames)}{match.group(2) or ''}"
    for index, node in enumerate(graph.node):
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
        match = _GENERATED.match(node.name)
        if match:
            node.name = f"{match.group(1)}__n{index}"
    for tensor in (*initializers, *graph.value_info, *graph.output):
        tensor.name = renames.get(tensor.name, tensor.name)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    graph.doc_string = "converted by tf2onnx"  # it named the traced function, numbered per process
    dim_names: dict[str, str] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and _GENERATED.match(dim.dim_param):
                dim.dim_param = dim_names.setdefault(dim.dim_param, f"dim__{len(dim_names)}")
    onnx.save(model, str(path))


# weight input of each op that carries one, and the channel axis of that weight (ONNX layout)
_WEIGHT_OPS = {"Conv": 0, "MatMul": 1, "Gemm": 1}
_GRID_TOLERANCE = 1e-3  # of the finest int8 step


def _store_int8_weights(path: Path) -> int:
    """Replace float weights that lie on a symmetric int8 grid (a QAT model's fake-quantized weights, folded
    by TensorFlow) with int8 initializers and a DequantizeLinear; return how many were replaced.

    The grid is found per tensor, or else per output channel; the int8 values times the scale give back
    exactly the float weights, so the artifact computes what the QAT model computes.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    replaced: list = []
    for node in graph.node:
        if node.op_type not in _WEIGHT_OPS or len(node.input) < 2 or node.input[1] not in initializers:
            continue
        tensor = initializers.pop(node.input[1])
        weight = numpy_helper.to_array(tensor)
        axis = _WEIGHT_OPS[node.op_type] if node.op_type != "Gemm" or not _attribute(node, "transB") else 0
        found = _int8_grid(weight, axis) if weight.dtype == np.float32 and weight.ndim >= 2 else None
        if found is None:
            continue
        values, scale = found
        name = tensor.name
        graph.initializer.remove(tensor)
        graph.initializer.extend([
            numpy_helper.from_array(values, f"{name}_int8"),
            numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero_point"),
        ])
        extra = {"axis": axis} if scale.ndim else {}
        replaced.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"],
                                         [name], name=f"{name}_dequantize", **extra))
    for index, node in enumerate(replaced):  # weights are ready before any node reads them
        graph.node.insert(index, node)
    onnx.save(model, str(path))
    return len(replaced)


def _attribute(node, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)


def _int8_grid(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(int8 values, scale) with ``values * scale == weight``: per tensor (scalar scale) or per channel of ``axis``."""
    whole = _grid_scale(weight.reshape(1, -1))
    if whole is not None:
        scale = whole.reshape(())
    else:
        channels = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
        scale = _grid_scale(channels)
        if scale is None:
            return None
    shape = [1] * weight.ndim
    if scale.ndim:
        shape[axis] = -1
    values = np.round(weight / scale.reshape(shape)).astype(np.int8)
    return values, scale.astype(np.float32)


def _grid_scale(rows: np.ndarray) -> np.ndarray | None:
    """Per row, the coarsest step s = max|row| / k (k <= 127) that holds every value as an integer multiple of s
    (within a thousandth of the finest step), or None when some row lies on no such grid."""
    rows = rows.astype(np.float64)
    peak = np.abs(rows).max(axis=1)
    tolerance = _GRID_TOLERANCE * peak / 127
    scales = np.where(peak > 0, np.nan, 1.0)
    for levels in range(1, 128):
        open_rows = np.isnan(scales)
        if not open_rows.any():
            break
        step = peak[open_rows] / levels
        values = rows[open_rows]
        error = np.abs(values - np.round(values / step[:, None]) * step[:, None]).max(axis=1)
        found = np.flatnonzero(open_rows)[error <= tolerance[open_rows]]
        scales[found] = peak[found] / levels
    return None if np.isnan(scales).any() else scales
