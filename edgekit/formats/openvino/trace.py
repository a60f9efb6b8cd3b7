"""OpenVINO adapter: every layer's output added as an extra model output (``Model.add_outputs``).

In an NNCF-quantized IR a layer's output feeds a ``FakeQuantize``; the trace reads the
FakeQuantize's output (what the next layer consumes) and derives scale and zero point from its
input range and levels. Inference precision is pinned to f32 so the float reference is float.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.divergence.model import Layer, ModelTrace, QuantParams, as_float, feed_for
from edgekit.errors import EdgekitError, first_line

_PASS_THROUGH = {"FakeQuantize", "Convert"}
_SKIP = {"Parameter", "Constant", "Result", "FakeQuantize", "Convert", "ShapeOf"}


def trace(path: Path, feeds: list[dict[str, np.ndarray]]) -> ModelTrace:
    """Run the IR at ``path`` on ``feeds`` with every layer's output exposed, one feed at a time."""
    import openvino as ov

    core = ov.Core()
    try:
        model = core.read_model(str(path))
    except Exception as exc:  # openvino raises RuntimeError with a C++ trace
        raise EdgekitError(f"OpenVINO cannot read {Path(path).name}: {first_line(exc, 300)}",
                           "the IR is corrupt or its .bin is missing") from exc
    constant: set[str] = set()
    layers: list[Layer] = []
    ports: dict[str, Any] = {}
    quant: dict[str, QuantParams] = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        sources = [port.get_source_output().get_node() for port in op.inputs()]
        if kind == "Constant" or (sources and kind != "Parameter" and all(s.get_friendly_name() in constant for s in sources)):
            constant.add(op.get_friendly_name())
            continue
        if kind in _SKIP or op.get_output_size() == 0:
            continue
        key = op.get_friendly_name()
        inputs = tuple(dict.fromkeys(_origin(s).get_friendly_name() for s in sources if s.get_friendly_name() not in constant))
        layers.append(Layer(key=key, name=key, op_type=kind, inputs=inputs))
        fq = next((t.get_node() for t in op.output(0).get_target_inputs()
                   if t.get_node().get_type_name() == "FakeQuantize" and t.get_index() == 0), None)
        ports[key] = fq.output(0) if fq is not None else op.output(0)
        params = _fq_params(fq) if fq is not None else {}
        quant[key] = QuantParams(**params, weight_channels=_weight_channels(op, sources, constant))
    known = {layer.key for layer in layers}
    layers = [Layer(lay.key, lay.name, lay.op_type, tuple(i for i in lay.inputs if i in known)) for lay in layers]
    outputs = tuple(_origin(r.input_value(0).get_node()).get_friendly_name() for r in model.get_results())
    read = _compile(core, model, ports)
    return ModelTrace(layers=layers, samples=lambda: (read(feed) for feed in feeds), quant=quant, outputs=outputs,
                      keys=tuple(ports))


def _origin(node: Any) -> Any:
    while node.get_type_name() in _PASS_THROUGH:
        node = node.input_value(0).get_node()
    return node


def _const(node: Any) -> np.ndarray | None:
    node = _origin(node)
    return np.asarray(node.get_data()) if node.get_type_name() == "Constant" else None


def _fq_params(fq: Any) -> dict[str, Any]:
    low, high = _const(fq.input_value(1).get_node()), _const(fq.input_value(2).get_node())
    levels = int(fq.get_attributes().get("levels", 256))
    if low is None or high is None or low.size != 1:
        return {}
    scale = float(high.reshape(-1)[0] - low.reshape(-1)[0]) / (levels - 1)
    if scale <= 0:
        return {}
    return {"scale": scale, "zero_point": int(round(-float(low.reshape(-1)[0]) / scale)), "qmin": 0, "qmax": levels - 1}


def _weight_channels(op: Any, sources: list[Any], constant: set[str]) -> int | None:
    """Scales of the layer's quantized weights (1: per-tensor), from the weight FakeQuantize or decompression Multiply."""
    for source in sources[1:2]:
        if source.get_friendly_name() not in constant:
            continue
        node = source
        while node.get_type_name() in ("Convert", "Reshape", "Transpose"):
            node = node.input_value(0).get_node()
        if node.get_type_name() == "FakeQuantize":
            low = _const(node.input_value(1).get_node())
            return int(low.size) if low is not None else None
        if node.get_type_name() == "Multiply":
            sizes = [c.size for c in (_const(v.get_node()) for v in node.input_values()) if c is not None]
            return int(min(sizes)) if sizes else None
    return None


def _compile(core: Any, model: Any, ports: dict[str, Any]) -> Callable[[dict], dict[str, np.ndarray]]:
    """``model`` compiled with every port in ``ports`` exposed, as a function running one feed."""
    import openvino as ov

    keys = list(ports)
    try:
        results = []
        for index, key in enumerate(keys):
            result = ov.opset13.result(ports[key])
            result.set_friendly_name(f"edgekit_trace_{index}")
            results.append(result)
        model.add_results(results)
        position = {r.get_friendly_name(): i for i, r in enumerate(model.get_results())}
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except Exception as exc:  # openvino raises RuntimeError with a C++ trace
        raise EdgekitError(f"OpenVINO cannot expose the intermediate tensors: {first_line(exc, 300)}",
                           "report the model; a partial trace is not possible for this IR") from exc
    request = compiled.create_infer_request()
    in_ports = list(compiled.inputs)
    in_names = [p.get_any_name() if p.get_names() else f"port_{i}" for i, p in enumerate(in_ports)]
    dtypes = [np.dtype(p.get_element_type().to_dtype()) for p in in_ports]
    out_ports = list(compiled.outputs)

    def read(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = request.infer(feed_for(feed, in_names, dtypes))
        values = {}
        for index, key in enumerate(keys):
            array = np.asarray(result[out_ports[position[f"edgekit_trace_{index}"]]])
            if array.dtype.kind == "f":
                values[key] = array.copy()
        return as_float(values)

    return read
