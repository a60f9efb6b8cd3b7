"""The divergence trace, once for every format: run reference and artifact, match layers, measure error.

Definitions (per layer, over the evaluation samples):
- cosine: mean over samples of the cosine between the artifact's and the reference's output tensor;
  ``error`` = 1 - cosine; relative error = ||artifact - reference|| / ||reference||.
- matching: by tensor (ONNX, LiteRT) or layer (OpenVINO) name; layers the converter named differently in
  the two artifacts are paired by position among the unmatched layers of the same op type, model outputs
  by position.
- inherited error: the largest error among the compared tensors the layer reads in the reference graph,
  looking through layers the artifact fused away (0 when it reads only graph inputs);
  added error = max(0, error - inherited error): the drop in cosine that appears at this layer.
- ranges: min/max of the reference's tensor over the calibration samples and over the evaluation samples;
  saturated fraction: share of reference values outside what the artifact's (scale, zero point) can hold;
  outlier ratio: max |x| / 99th percentile of |x| of the reference tensor on the calibration samples.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edgekit import metrics
from edgekit.divergence.model import ModelTrace
from edgekit.divergence.report import LayerDivergence

ADAPTERS = {
    "onnx": "edgekit.divergence.onnx_adapter",
    "openvino": "edgekit.divergence.openvino_adapter",
    "tflite": "edgekit.divergence.litert_adapter",
}


def run_trace(path: Path, fmt: str, feeds: list[dict[str, np.ndarray]]) -> ModelTrace:
    """The model at ``path`` (a ``fmt`` artifact) run on ``feeds`` with every layer output kept."""
    return importlib.import_module(ADAPTERS[fmt]).trace(Path(path), feeds)


def compare(
    reference: ModelTrace, artifact: ModelTrace, calibration: ModelTrace | None
) -> tuple[list[LayerDivergence], list[str]]:
    """Per-layer divergence of ``artifact`` from ``reference`` in the reference's layer order, and notes
    on the layers that could not be matched."""
    notes: list[str] = []
    errors: dict[str, float] = {}
    rows: list[LayerDivergence] = []
    unmatched = []
    aliases = {**_positional_aliases(reference, artifact), **dict(zip(reference.outputs, artifact.outputs))}
    matched: dict[str, tuple[str, ...]] = {}  # layer key -> the compared layers it reads, through unmatched ones
    for layer in reference.layers:
        matched[layer.key] = tuple(dict.fromkeys(
            k for i in layer.inputs for k in ((i,) if i in errors else matched.get(i, ()))
        ))
        ref = reference.values.get(layer.key)
        art_key = layer.key if layer.key in artifact.values else aliases.get(layer.key, layer.key)
        act = artifact.values.get(art_key)
        if ref is None or act is None:
            unmatched.append(layer.key)
            continue
        if ref.shape != act.shape:
            if ref.size != act.size:
                unmatched.append(layer.key)
                continue
            act = act.reshape(ref.shape)
        cos = metrics.mean_cosine(ref, act)
        error = 1.0 - cos
        inherited = max((errors[i] for i in matched[layer.key]), default=0.0)
        errors[layer.key] = error
        q = artifact.quant.get(art_key)
        cal = calibration.values.get(layer.key) if calibration is not None else None
        source = cal if cal is not None else ref
        rows.append(LayerDivergence(
            index=len(rows), name=_artifact_name(artifact, art_key, layer.name), key=layer.key, op_type=layer.op_type,
            inputs=list(matched[layer.key]), cosine=cos,
            relative_error=float(np.linalg.norm(act - ref) / max(np.linalg.norm(ref), 1e-12)),
            error=error, inherited_error=inherited, added_error=max(0.0, error - inherited),
            scale=q.scale if q else None, zero_point=q.zero_point if q else None,
            weight_channels=q.weight_channels if q else None,
            calibration_range=(float(cal.min()), float(cal.max())) if cal is not None else None,
            evaluation_range=(float(ref.min()), float(ref.max())),
            saturated_fraction=_saturated(ref, q.representable() if q else None),
            outlier_ratio=_outlier_ratio(source),
        ))
    if unmatched:
        notes.append(f"{len(unmatched)} of {len(reference.layers)} reference layers have no counterpart in the artifact "
                     f"(fused or renamed by the converter): {', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}")
    if artifact.missing:
        notes.append(f"the runtime did not expose {len(artifact.missing)} tensor(s) of the artifact")
    return rows, notes


def _positional_aliases(reference: ModelTrace, artifact: ModelTrace) -> dict[str, str]:
    """Layers whose names differ between the two conversions (generated names with counters), matched by
    position among the unmatched layers of the same op type when both have the same count of them."""
    ref_left = [lay for lay in reference.layers if lay.key not in artifact.values]
    art_left = [lay for lay in artifact.layers if lay.key not in reference.values]
    aliases = {}
    for op_type in {lay.op_type for lay in ref_left}:
        refs = [lay.key for lay in ref_left if lay.op_type == op_type]
        arts = [lay.key for lay in art_left if lay.op_type == op_type]
        if len(refs) == len(arts):
            aliases.update(zip(refs, arts))
    return aliases


def _artifact_name(artifact: ModelTrace, key: str, fallback: str) -> str:
    """The layer's name in the artifact (what an exclusion list takes), else the reference's."""
    return next((layer.name for layer in artifact.layers if layer.key == key), fallback)


def _saturated(values: np.ndarray, representable: tuple[float, float] | None) -> float | None:
    if representable is None:
        return None
    low, high = representable
    margin = 0.5 * (high - low) / 255.0
    return float(np.mean((values < low - margin) | (values > high + margin)))


def _outlier_ratio(values: np.ndarray) -> float:
    """How far the largest values stand out: the larger of max |x| / 99th percentile of |x| and, per channel
    (axis 1 and the last axis), the largest channel's max |x| over the median channel's."""
    magnitude = np.abs(values)
    if not magnitude.size:
        return 1.0
    ratios = [_ratio(float(magnitude.max()), float(np.percentile(magnitude, 99)))]
    for axis in {1, magnitude.ndim - 1} if magnitude.ndim >= 2 else ():
        per_channel = np.moveaxis(magnitude, axis, 0).reshape(magnitude.shape[axis], -1).max(axis=1)
        if per_channel.size >= 4:
            ratios.append(_ratio(float(per_channel.max()), float(np.median(per_channel))))
    return max(ratios)


def _ratio(peak: float, typical: float) -> float:
    return min(peak / typical, 1e6) if typical > 0 else (1.0 if peak == 0 else 1e6)


def output_agreement(reference: ModelTrace, artifact: ModelTrace) -> tuple[float | None, float | None]:
    """Cosine (worst output) and top-1 agreement (classifier-shaped outputs) of the model outputs."""
    cosines, top1 = [], []
    for key, art_key in zip(reference.outputs, artifact.outputs):
        ref, act = reference.values.get(key), artifact.values.get(key, artifact.values.get(art_key))
        if ref is None or act is None or ref.size != act.size:
            continue
        act = act.reshape(ref.shape)
        cosines.append(metrics.mean_cosine(ref, act))
        if ref.ndim == 2 and ref.shape[1] > 1:
            top1.append(metrics.top1_agreement(ref, act))
    return (min(cosines) if cosines else None), (min(top1) if top1 else None)
