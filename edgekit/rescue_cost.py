"""What a rescued int8 artifact costs: the share of its multiply-accumulates that run with int8 weights.

Counted in the artifact itself, per weighted layer (convolutions, matrix products): weight elements times
output positions (the output's size over its channel count), int8 when the layer reads quantized weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_ONNX = {"Conv": 1, "ConvTranspose": 1, "MatMul": -1, "Gemm": -1}
_OPENVINO = {"Convolution": 1, "GroupConvolution": 1, "ConvolutionBackpropData": 1, "MatMul": -1}
_TFLITE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV", "CONV_3D"}


def int8_compute_share(path: str | Path, fmt: str) -> float | None:
    """int8 MACs over all MACs of the weighted layers of the artifact (None: no weighted layer found, or a
    format whose layers are not counted here, such as executorch)."""
    counter = {"onnx": _onnx, "openvino": _openvino, "tflite": _tflite}.get(fmt)
    if counter is None:
        return None
    counts = counter(Path(path))
    total = sum(macs for macs, _ in counts)
    return round(sum(macs for macs, int8 in counts if int8) / total, 4) if total else None


def _positions(shape: list[int], axis: int) -> int:
    """Output positions per sample: the output's size without its batch and channel axes."""
    dims = [d if d and d > 0 else 1 for d in shape]
    skip = {0, axis % len(dims)} if dims else set()
    return int(np.prod([d for i, d in enumerate(dims) if i not in skip], dtype=np.int64))


def _onnx(path: Path) -> list[tuple[int, bool]]:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    graph = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*graph.value_info, *graph.output, *graph.input]}
    inits = {i.name: list(i.dims) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    counts = []
    for node in graph.node:
        if node.op_type not in _ONNX or len(node.input) < 2:
            continue
        weight, quantized = node.input[1], False
        dq = producer.get(weight)
        if dq is not None and dq.op_type == "DequantizeLinear":
            weight, quantized = dq.input[0], True
        if weight not in inits:
            continue
        elements = int(np.prod(inits[weight], dtype=np.int64))
        counts.append((elements * _positions(shapes.get(node.output[0], []), _ONNX[node.op_type]), quantized))
    return counts


def _openvino(path: Path) -> list[tuple[int, bool]]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    counts = []
    for op in model.get_ops():
        if op.get_type_name() not in _OPENVINO:
            continue
        node, quantized = op.input_value(1).get_node(), False
        while node.get_type_name() in ("Convert", "Reshape", "Transpose", "Subtract", "Multiply", "FakeQuantize", "Unsqueeze"):
            quantized |= node.get_type_name() == "FakeQuantize"
            node = node.input_value(0).get_node()
        if node.get_type_name() != "Constant":
            continue
        quantized |= node.get_output_element_type(0).get_type_name() in ("i8", "u8", "i4", "u4")
        elements = int(np.prod(list(node.get_output_shape(0)), dtype=np.int64))
        shape = list(op.get_output_partial_shape(0).get_min_shape())
        counts.append((elements * _positions([int(d) for d in shape], _OPENVINO[op.get_type_name()]), quantized))
    return counts


def _tflite(path: Path) -> list[tuple[int, bool]]:
    from edgekit.formats.tflite.litert import interpreter_class

    interpreter: Any = interpreter_class()(model_path=str(path))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    counts = []
    for op in interpreter._get_ops_details():
        if op["op_name"] not in _TFLITE or len(op["inputs"]) < 2 or op["inputs"][1] < 0:
            continue
        weight = details[op["inputs"][1]]
        out = details[op["outputs"][0]]
        elements = int(np.prod(weight["shape"], dtype=np.int64))
        quantized = np.dtype(weight["dtype"]).kind in "iu"
        counts.append((elements * _positions([int(d) for d in out["shape"]], -1), quantized))
    return counts
