"""Per-layer activation ranges of a float source model, and how well calibration ranges cover validation's.

Each framework's own intermediate outputs: ONNX Runtime with every float node output exposed as a graph
output, a Keras sub-model over every layer's output, PyTorch forward hooks on every leaf module. Runs
where the model is loaded (the build worker for model files).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from edgekit.data import Feed
from edgekit.data_checks import LayerCoverage

MAX_LAYERS = 400


def layer_values(source: Any, feeds: list[Feed]) -> dict[str, np.ndarray]:
    """Every layer's float output over ``feeds``, flattened per layer (layer name -> values)."""
    framework = source.framework
    per_feed = (_onnx if framework == "onnx" else _keras if framework in ("keras2", "keras3") else _torch)(source, feeds)
    merged: dict[str, list[np.ndarray]] = {}
    for values in per_feed:
        for name, value in values.items():
            merged.setdefault(name, []).append(np.asarray(value, dtype=np.float64).ravel())
    return {name: np.concatenate(parts) for name, parts in merged.items() if len(parts) == len(feeds)}


def _onnx(source: Any, feeds: list[Feed]) -> list[dict[str, np.ndarray]]:
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(source.model)
    inferred = onnx.shape_inference.infer_shapes(model)
    floats = {v.name for v in inferred.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    known = {o.name for o in model.graph.output}
    names = [out for node in model.graph.node if node.op_type not in ("Constant", "Shape")
             for out in node.output if out in floats and out not in known][:MAX_LAYERS]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs()]
    results = []
    for feed in feeds:
        arrays = {spec.name: np.asarray(feed[spec.name]).astype(spec.dtype, copy=False) for spec in source.spec.inputs}
        results.append(dict(zip(wanted, session.run(wanted, arrays))))
    return results


def _keras(source: Any, feeds: list[Feed]) -> list[dict[str, np.ndarray]]:
    model = source.model
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"][:MAX_LAYERS]
    probe_model = type(model)(inputs=model.inputs, outputs=[layer.output for layer in layers]) if layers else None
    if probe_model is None:
        return [{} for _ in feeds]
    results = []
    for feed in feeds:
        arrays = [np.asarray(feed[spec.name], dtype=spec.dtype) for spec in source.spec.inputs]
        outputs = probe_model(arrays[0] if len(arrays) == 1 else arrays, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        results.append({layer.name: np.asarray(value) for layer, value in zip(layers, outputs)})
    return results


def _torch(source: Any, feeds: list[Feed]) -> list[dict[str, np.ndarray]]:
    import torch

    captured: dict[str, np.ndarray] = {}
    handles = []
    for name, module in list(source.model.named_modules())[:MAX_LAYERS]:
        if name and not list(module.children()):
            def hook(_module: Any, _inputs: Any, output: Any, name: str = name) -> None:
                if isinstance(output, torch.Tensor) and output.is_floating_point():
                    captured[name] = output.detach().cpu().numpy()
            handles.append(module.register_forward_hook(hook))
    results = []
    try:
        for feed in feeds:
            captured.clear()
            source.predict(feed)
            results.append(dict(captured))
    finally:
        for handle in handles:
            handle.remove()
    return results


def first_layer_rescaling(source: Any) -> str | None:
    """The layer that scales raw 0..255 pixels at the model's input, if it has one: a Keras ``Rescaling`` (or
    ``Normalization``) among its first layers, or an ONNX ``Div`` by 100 or more / ``Mul`` by 1/100 or less
    applied to a graph input."""
    if source.framework in ("keras2", "keras3"):
        for layer in source.model.layers[:3]:
            if type(layer).__name__ in ("Rescaling", "Normalization"):
                return f"{type(layer).__name__} '{layer.name}'"
        return None
    if source.framework != "onnx":
        return None
    from onnx import numpy_helper

    graph = source.model.graph
    inputs = {i.name for i in graph.input}
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].type == 4})
    for node in graph.node:
        if node.op_type not in ("Div", "Mul") or not any(i in inputs for i in node.input):
            continue
        factor = next((constants[i] for i in node.input if i in constants), None)
        if factor is None or not np.size(factor):
            continue
        value = float(np.abs(np.asarray(factor, dtype=np.float64)).mean())
        if (node.op_type == "Div" and value >= 100) or (node.op_type == "Mul" and 0 < value <= 0.01):
            return f"{node.op_type} '{node.name or node.output[0]}' by {value:g}"
    return None


def coverage(calibration: dict[str, np.ndarray], validation: dict[str, np.ndarray]) -> list[LayerCoverage]:
    """Per layer: share of the validation range [min, max] inside the calibration range, and share of
    validation values outside it (clipped by a quantizer calibrated by min/max); worst coverage first."""
    return streamed_coverage([calibration], [validation])


def streamed_coverage(calibration: Iterable[dict[str, np.ndarray]],
                      validation: Iterable[dict[str, np.ndarray]]) -> list[LayerCoverage]:
    """:func:`coverage` over per-sample tensors (e.g. ``ModelTrace.samples()``), one sample held at a time."""
    ranges: dict[str, tuple[float, float]] = {}
    for sample in calibration:
        for name, values in sample.items():
            if np.size(values):
                lo, hi = float(np.min(values)), float(np.max(values))
                old = ranges.get(name, (lo, hi))
                ranges[name] = (min(old[0], lo), max(old[1], hi))
    seen: dict[str, list[float]] = {}  # name -> [min, max, values outside the calibration range, values]
    for sample in validation:
        for name, values in sample.items():
            if name not in ranges or not np.size(values):
                continue
            cmin, cmax = ranges[name]
            values = np.asarray(values)
            lo, hi = float(values.min()), float(values.max())
            stats = seen.setdefault(name, [lo, hi, 0.0, 0.0])
            stats[0], stats[1] = min(stats[0], lo), max(stats[1], hi)
            stats[2] += float(np.count_nonzero((values < cmin) | (values > cmax)))
            stats[3] += values.size
    rows = []
    for name, (vmin, vmax, outside, total) in seen.items():
        cmin, cmax = ranges[name]
        width = vmax - vmin
        inside = max(0.0, min(vmax, cmax) - max(vmin, cmin))
        covered = (1.0 if cmin <= vmin and vmax <= cmax else 0.0) if width == 0 else inside / width
        rows.append(LayerCoverage(layer=name, calibration_range=(cmin, cmax), validation_range=(vmin, vmax),
                                  coverage=round(covered, 6), clipped=round(outside / total, 6)))
    return sorted(rows, key=lambda r: (r.coverage, -r.clipped))


def probe(source: Any, calibration: list[Feed], validation: list[Feed],
          kinds: dict[str, str] | None = None) -> tuple[dict[str, int] | None, list[LayerCoverage], str | None]:
    """The reference model's top-1 class histogram on ``calibration``, the per-layer coverage of
    ``validation``'s activation ranges by ``calibration``'s, and the first layer that rescales raw pixels, if any."""
    histogram = _histogram(source, calibration, dict(kinds or {}))
    rows = coverage(layer_values(source, calibration), layer_values(source, validation)) if validation else []
    return histogram, rows, first_layer_rescaling(source)


def _histogram(source: Any, feeds: list[Feed], kinds: dict[str, str]) -> dict[str, int] | None:
    from edgekit.output_kinds import guess_kind

    outputs = [source.predict(feed) for feed in feeds]
    for spec in source.spec.outputs:
        values = [np.asarray(out[spec.name]) for out in outputs]
        if (kinds.get(spec.name) or guess_kind(spec, source.spec.task, values)) == "classifier":
            classes = [int(v.reshape(-1, v.shape[-1])[0].argmax()) for v in values]
            found, counts = np.unique(classes, return_counts=True)
            return {str(int(c)): int(n) for c, n in zip(found, counts)}
    return None
