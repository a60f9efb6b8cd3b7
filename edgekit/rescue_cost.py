"""What a rescued int8 artifact costs: the share of its multiply-accumulates that run with int8 weights.

Counted in the artifact itself, per weighted layer (convolutions, matrix products): weight elements times
output positions (the output's size over its channel count), int8 when the layer reads quantized weights.
Recurrent layers (LSTM, GRU, RNN ops) count their input and recurrent weights once per time step: a route that
keeps them in float (ONNX Runtime's static quantizer has no LSTM) shows it in the share.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_ONNX = {"Conv": 1, "ConvTranspose": 1, "MatMul": -1, "Gemm": -1}
_ONNX_RECURRENT = {"LSTM", "GRU", "RNN"}  # inputs: X, W, R; X is (seq, batch, in), or (batch, seq, in) with layout=1
_ONNX_PASS = {"Unsqueeze", "Squeeze", "Reshape", "Identity", "Transpose", "Cast"}  # between a weight and its layer
_OPENVINO = {"Convolution": 1, "GroupConvolution": 1, "ConvolutionBackpropData": 1, "MatMul": -1}
#: recurrent op -> (indices of its weight inputs, whether input 0 is (batch, seq, features))
_OPENVINO_RECURRENT = {"LSTMSequence": ((4, 5), True), "GRUSequence": ((3, 4), True), "RNNSequence": ((3, 4), True),
                       "LSTMCell": ((3, 4), False), "GRUCell": ((2, 3), False), "RNNCell": ((2, 3), False)}
_TFLITE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV", "CONV_3D"}
#: fused recurrent kernels -> their weight inputs (input-to-gate, then recurrent-to-gate)
_TFLITE_RECURRENT = {"UNIDIRECTIONAL_SEQUENCE_LSTM": range(1, 9), "UNIDIRECTIONAL_SEQUENCE_RNN": (1, 2)}
RECURRENT_OPS = frozenset({*_ONNX_RECURRENT, *_OPENVINO_RECURRENT, *_TFLITE_RECURRENT})


def int8_compute_share(path: str | Path, fmt: str) -> float | None:
    """int8 MACs over all MACs of the weighted layers of the artifact (None: no weighted layer found, or a
    format whose layers are not counted here, such as executorch)."""
    counts = _counts(path, fmt)
    total = sum(macs for macs, _, _ in counts)
    return round(sum(macs for macs, int8, _ in counts if int8) / total, 4) if total else None


def float_compute_by_op(path: str | Path, fmt: str) -> dict[str, float]:
    """Share of all weighted-layer MACs left with float weights, per op type (empty when none or not counted)."""
    counts = _counts(path, fmt)
    total = sum(macs for macs, _, _ in counts)
    shares: dict[str, float] = {}
    for macs, int8, op in counts:
        if not int8 and total:
            shares[op] = round(shares.get(op, 0.0) + macs / total, 4)
    return shares


def float_recurrent_share(path: str | Path, fmt: str) -> dict[str, float]:
    """``float_compute_by_op`` restricted to recurrent layers (LSTM, GRU, RNN ops of any format)."""
    return {op: share for op, share in float_compute_by_op(path, fmt).items() if op in RECURRENT_OPS}


def _counts(path: str | Path, fmt: str) -> list[tuple[int, bool, str]]:
    counter = {"onnx": _onnx, "openvino": _openvino, "tflite": _tflite}.get(fmt)
    return counter(Path(path)) if counter else []


def _positions(shape: list[int], axis: int) -> int:
    """Output positions per sample: the output's size without its batch and channel axes."""
    dims = [d if d and d > 0 else 1 for d in shape]
    skip = {0, axis % len(dims)} if dims else set()
    return int(np.prod([d for i, d in enumerate(dims) if i not in skip], dtype=np.int64))


def _onnx(path: Path) -> list[tuple[int, bool, str]]:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    graphs = _onnx_graphs(model.graph)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for g in graphs for v in [*g.value_info, *g.output, *g.input]}
    consts = {i.name: list(i.dims) for g in graphs for i in g.initializer}
    consts.update({n.output[0]: list(a.t.dims) for g in graphs for n in g.node if n.op_type == "Constant"
                   for a in n.attribute if a.name == "value"})
    producer = {out: node for g in graphs for node in g.node for out in node.output}

    def weight(name: str) -> tuple[int, bool] | None:
        """(elements, int8) of the constant behind ``name``, through reshapes and one DequantizeLinear."""
        quantized = False
        while name not in consts and name in producer and producer[name].op_type in (*_ONNX_PASS, "DequantizeLinear"):
            quantized |= producer[name].op_type == "DequantizeLinear"
            name = producer[name].input[0]
        return (int(np.prod(consts[name], dtype=np.int64)), quantized) if name in consts else None

    counts = []
    for node in (n for g in graphs for n in g.node):
        if node.op_type in _ONNX and len(node.input) >= 2 and (found := weight(node.input[1])):
            counts.append((found[0] * _positions(shapes.get(node.output[0], []), _ONNX[node.op_type]), found[1], node.op_type))
        elif node.op_type in _ONNX_RECURRENT and len(node.input) >= 3:
            layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
            dims = shapes.get(node.input[0], [])
            steps = max(dims[layout] if len(dims) == 3 else 1, 1)
            for name in node.input[1:3]:
                found, dims = weight(name), shapes.get(name, [])
                elements = int(np.prod(dims, dtype=np.int64)) if dims and all(d > 0 for d in dims) else None
                if found or elements:  # the inferred shape when the weight is computed (gates reordered by Slice/Concat)
                    counts.append(((elements or found[0]) * steps, bool(found and found[1]), node.op_type))
    return counts


def _onnx_graphs(graph: Any) -> list[Any]:
    """The graph and every subgraph of its control-flow nodes (If, Loop, Scan)."""
    found = [graph]
    for node in graph.node:
        for attribute in node.attribute:
            found.extend(g for sub in ([attribute.g] if attribute.HasField("g") else list(attribute.graphs))
                         for g in _onnx_graphs(sub))
    return found


def _openvino(path: Path) -> list[tuple[int, bool, str]]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    counts = []
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind in _OPENVINO:
            found = _openvino_weight(op.input_value(1).get_node())
            if found:
                shape = [int(d) for d in op.get_output_partial_shape(0).get_min_shape()]
                counts.append((found[0] * _positions(shape, _OPENVINO[kind]), found[1], kind))
        elif kind in _OPENVINO_RECURRENT:
            indices, sequence = _OPENVINO_RECURRENT[kind]
            steps = max(int(op.get_input_partial_shape(0).get_min_shape()[1]), 1) if sequence else 1
            for index in indices:
                found = _openvino_weight(op.input_value(index).get_node())
                if found:
                    counts.append((found[0] * steps, found[1], kind))
    return counts


def _openvino_weight(node: Any) -> tuple[int, bool] | None:
    """(elements, int8) of the constant feeding a layer, through converts, reshapes and FakeQuantize."""
    quantized = False
    while node.get_type_name() in ("Convert", "Reshape", "Transpose", "Subtract", "Multiply", "FakeQuantize", "Unsqueeze"):
        quantized |= node.get_type_name() == "FakeQuantize"
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        return None
    quantized |= node.get_output_element_type(0).get_type_name() in ("i8", "u8", "i4", "u4")
    return int(np.prod(list(node.get_output_shape(0)), dtype=np.int64)), quantized


def _tflite(path: Path) -> list[tuple[int, bool, str]]:
    from edgekit.formats.tflite.litert import interpreter_class

    interpreter: Any = interpreter_class()(model_path=str(path))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    counts = []
    for op in interpreter._get_ops_details():
        name, inputs = op["op_name"], op["inputs"]
        if name in _TFLITE and len(inputs) >= 2 and inputs[1] >= 0:
            weight, out = details[inputs[1]], details[op["outputs"][0]]
            elements = int(np.prod(weight["shape"], dtype=np.int64))
            counts.append((elements * _positions([int(d) for d in out["shape"]], -1), np.dtype(weight["dtype"]).kind in "iu",
                           name))
        elif name in _TFLITE_RECURRENT:
            steps = max(int(np.prod(details[inputs[0]]["shape"][:-1], dtype=np.int64)), 1)  # batch 1: its time steps
            for index in (inputs[i] for i in _TFLITE_RECURRENT[name] if i < len(inputs) and inputs[i] >= 0):
                weight = details[index]
                counts.append((int(np.prod(weight["shape"], dtype=np.int64)) * steps, np.dtype(weight["dtype"]).kind in "iu",
                               name))
    return counts
