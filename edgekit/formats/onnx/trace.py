"""ONNX Runtime adapter: every float tensor of the graph exposed as an extra graph output.

In a QDQ model (ONNX Runtime static quantization) a layer's output ``X`` is followed by
``QuantizeLinear -> DequantizeLinear``; the trace reads the dequantized tensor, which is the value
the next layer really consumes, and takes the scale and zero point from the ``QuantizeLinear``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.divergence.model import Layer, ModelTrace, QuantParams, as_float, feed_for
from edgekit.errors import EdgekitError, first_line

_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_SKIP = _QDQ | {"Constant", "Shape", "Identity"}
# ONNX Runtime's QDQ quantizer renames a layer output that is also a graph output to <name>_QuantizeLinear_Input
_RENAMED = "_QuantizeLinear_Input"
_INT_RANGES = {np.dtype("int8"): (-128, 127), np.dtype("uint8"): (0, 255), np.dtype("int16"): (-32768, 32767),
               np.dtype("uint16"): (0, 65535)}


def trace(path: Path, feeds: list[dict[str, np.ndarray]]) -> ModelTrace:
    """Run the ONNX model at ``path`` on ``feeds`` with every layer's output exposed, one feed at a time."""
    import onnx

    from edgekit.sources.onnx import external_data_files

    external_data_files(Path(path))  # refuses external data that points outside the model's folder
    model = onnx.load(str(path), load_external_data=True)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def origin(name: str) -> str:
        """The float tensor behind a chain of Q/DQ nodes (under its name in the float model)."""
        node = producer.get(name)
        while node is not None and node.op_type in _QDQ and node.input[0] not in inits:
            name = node.input[0]
            node = producer.get(name)
        return name.removesuffix(_RENAMED)

    layers: list[Layer] = []
    exposed: dict[str, str] = {}  # layer key -> tensor to read
    quant: dict[str, QuantParams] = {}
    for index, node in enumerate(graph.node):
        if node.op_type in _SKIP or not node.output or all(_constant(i, inits, producer) for i in node.input if i):
            continue
        key = node.output[0].removesuffix(_RENAMED)
        inputs = tuple(dict.fromkeys(origin(i) for i in node.input if i and not _constant(i, inits, producer)))
        layers.append(Layer(key=key, name=node.name or f"{node.op_type}_{index}", op_type=node.op_type, inputs=inputs))
        exposed[key], params = _after_qdq(node.output[0], consumers, inits)
        quant[key] = QuantParams(**params, weight_channels=_weight_channels(node, producer, inits))
    known = {layer.key for layer in layers}
    layers = [Layer(lay.key, lay.name, lay.op_type, tuple(i for i in lay.inputs if i in known)) for lay in layers]
    outputs = tuple(origin(o.name) for o in graph.output)
    session = _session(model, sorted(set(exposed.values())))

    def samples() -> Iterator[dict[str, np.ndarray]]:
        for values in _run(session, feeds):
            yield as_float({key: values[tensor] for key, tensor in exposed.items() if tensor in values})

    return ModelTrace(layers=layers, samples=samples, quant=quant, outputs=outputs, keys=tuple(exposed))


def _constant(name: str, inits: dict, producer: dict) -> bool:
    node = producer.get(name)
    if name in inits:
        return True
    if node is None:
        return False  # a graph input
    return node.op_type == "Constant" or (node.op_type in _QDQ and all(_constant(i, inits, producer) for i in node.input if i))


def _after_qdq(key: str, consumers: dict, inits: dict) -> tuple[str, dict[str, Any]]:
    """The dequantized copy of ``key`` and its quantization, or ``key`` itself when it is not quantized."""
    from onnx import numpy_helper

    for q in consumers.get(key, []):
        if q.op_type != "QuantizeLinear" or q.input[0] != key:
            continue
        scale = numpy_helper.to_array(inits[q.input[1]]) if q.input[1] in inits else None
        zp = numpy_helper.to_array(inits[q.input[2]]) if len(q.input) > 2 and q.input[2] in inits else None
        params: dict[str, Any] = {}
        if scale is not None and scale.size == 1:
            params["scale"] = float(scale.reshape(-1)[0])
            params["zero_point"] = int(zp.reshape(-1)[0]) if zp is not None else 0
            params["qmin"], params["qmax"] = _INT_RANGES.get(zp.dtype if zp is not None else np.dtype("uint8"), (0, 255))
        dq = next((c for c in consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"), None)
        return (dq.output[0] if dq is not None else key), params
    return key, {}


def _weight_channels(node: Any, producer: dict, inits: dict) -> int | None:
    """How many scales the layer's quantized weights have (1: per-tensor), or None without quantized weights."""
    from onnx import numpy_helper

    for name in node.input[1:2]:
        dq = producer.get(name)
        if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[1] in inits:
            return int(numpy_helper.to_array(inits[dq.input[1]]).size)
    return None


def _session(model: Any, names: list[str]) -> Any:
    """An ONNX Runtime session of ``model`` with the tensors ``names`` exposed as outputs."""
    import onnx
    import onnxruntime as ort

    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise EdgekitError(
            f"ONNX Runtime cannot expose the intermediate tensors: {first_line(exc, 300)}",
            "the artifact may be corrupt; edgekit validate checks that it runs at all",
        ) from exc
    return session


def _run(session: Any, feeds: list[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """Each feed's float outputs, one feed at a time."""
    inputs = session.get_inputs()
    in_names = [i.name for i in inputs]
    dtypes = [np.dtype(_ORT_TYPES.get(i.type, "float32")) for i in inputs]
    out_names = [o.name for o in session.get_outputs()]
    for feed in feeds:
        result = session.run(out_names, feed_for(feed, in_names, dtypes))
        yield {n: v for n, v in zip(out_names, result) if isinstance(v, np.ndarray) and v.dtype.kind == "f"}


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8",
              "tensor(bool)": "bool"}
