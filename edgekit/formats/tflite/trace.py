"""LiteRT adapter: the interpreter keeps every tensor (``experimental_preserve_all_tensors``).

It runs with the builtin kernels and no default delegate, so XNNPACK does not fuse layers away;
int8 tensors are dequantized with their own scale and zero point.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.divergence.model import Layer, ModelTrace, QuantParams, feed_for
from edgekit.errors import EdgekitError, first_line
from edgekit.formats.runner import quantize

_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE"}


def trace(path: Path, feeds: list[dict[str, np.ndarray]]) -> ModelTrace:
    """Run the .tflite at ``path`` on ``feeds`` with every layer's output exposed, one feed at a time."""
    from edgekit.formats.tflite.litert import interpreter_class, tensor_spec

    try:
        from ai_edge_litert.interpreter import OpResolverType

        interpreter = interpreter_class()(
            model_path=str(path), experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
        ops = interpreter._get_ops_details()
    except (ValueError, RuntimeError, ImportError, AttributeError) as exc:
        first = first_line(exc, 300)
        raise EdgekitError(f"LiteRT cannot expose the intermediate tensors of {Path(path).name}: {first}",
                           "install ai-edge-litert (tflite_runtime has no tensor preservation)") from exc
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    produced = {t: op for op in ops for t in op["outputs"]}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}

    def is_constant(index: int) -> bool:
        op = produced.get(index)
        if op is None:
            return index not in graph_inputs
        return op["op_name"] in _PASS_THROUGH and all(is_constant(i) for i in op["inputs"] if i >= 0)

    def origin(index: int) -> int:
        op = produced.get(index)
        while op is not None and op["op_name"] in _PASS_THROUGH:
            index = op["inputs"][0]
            op = produced.get(index)
        return index

    layers, keys, quant = [], {}, {}
    for op in ops:
        if op["op_name"] in _PASS_THROUGH or not len(op["outputs"]) or all(is_constant(i) for i in op["inputs"] if i >= 0):
            continue
        out = int(op["outputs"][0])
        if np.dtype(details[out]["dtype"]).kind not in "f" and not _params(details[out]):
            continue  # shape arithmetic, not activations
        key = details[out]["name"]
        inputs = tuple(dict.fromkeys(details[origin(i)]["name"] for i in op["inputs"] if i >= 0 and not is_constant(i)))
        layers.append(Layer(key=key, name=key, op_type=op["op_name"], inputs=inputs))
        keys[key] = out
        weights = [details[i] for i in op["inputs"][1:2] if i >= 0 and is_constant(i)]
        channels = len(weights[0]["quantization_parameters"]["scales"]) if weights else 0
        quant[key] = QuantParams(**_params(details[out]), weight_channels=channels or None)
    known = set(keys)
    layers = [Layer(lay.key, lay.name, lay.op_type, tuple(i for i in lay.inputs if i in known)) for lay in layers]
    signature = next(iter(interpreter.get_signature_list()), None)
    if signature is not None:
        runner = interpreter.get_signature_runner(signature)
        in_map = runner.get_input_details()
        specs = [tensor_spec(dict(d, name=name)) for name, d in in_map.items()]
        out_indices = [d["index"] for d in runner.get_output_details().values()]
    else:
        runner, in_map = None, {}
        specs = [tensor_spec(d) for d in interpreter.get_input_details()]
        out_indices = [d["index"] for d in interpreter.get_output_details()]
    names = [s.name for s in specs]

    def samples() -> Iterator[dict[str, np.ndarray]]:
        for feed in feeds:
            prepared = feed_for(feed, names, [np.dtype("float32")] * len(names))
            prepared = {s.name: (quantize(prepared[s.name], s) if s.scale and np.dtype(s.dtype).kind in "iu"
                                 else prepared[s.name].astype(s.dtype)) for s in specs}
            if runner is not None:
                runner(**prepared)
            else:
                for detail in interpreter.get_input_details():
                    interpreter.set_tensor(detail["index"], prepared[detail["name"]])
                interpreter.invoke()
            yield {key: _dequantized(interpreter.get_tensor(index), details[index]) for key, index in keys.items()}
            interpreter.reset_all_variables()

    outputs = tuple(details[origin(i)]["name"] for i in out_indices)
    return ModelTrace(layers=layers, samples=samples, quant=quant, outputs=outputs, keys=tuple(keys))


def _params(detail: dict) -> dict:
    q = detail["quantization_parameters"]
    if len(q["scales"]) != 1 or np.dtype(detail["dtype"]).kind not in "iu":
        return {}
    info = np.iinfo(np.dtype(detail["dtype"]))
    return {"scale": float(q["scales"][0]), "zero_point": int(q["zero_points"][0]), "qmin": int(info.min), "qmax": int(info.max)}


def _dequantized(value: np.ndarray, detail: dict) -> np.ndarray:
    value = np.array(value)
    q = detail["quantization_parameters"]
    if np.dtype(detail["dtype"]).kind in "iu" and len(q["scales"]) == 1:
        return ((value.astype(np.float32) - q["zero_points"][0]) * q["scales"][0]).astype(np.float32)
    return value.astype(np.float32) if value.dtype.kind == "f" else value.astype(np.float32)
