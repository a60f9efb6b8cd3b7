"""Rank the layers that cause most of the loss and say why, each with a concrete remedy."""
from __future__ import annotations

from edgekit.divergence.report import Culprit, LayerDivergence

OUTLIER_RATIO = 12.0  # max |x| over the 99th percentile of |x|: the int8 grid is spent on a few values
SATURATION = 0.005  # share of values clipped by the quantization range
RANGE_MISMATCH = 8.0  # ratio of the absolute ranges of an Add's two branches
OFFSET_RATIO = 8.0  # max |x| over (max - min): the values sit on an offset far larger than their spread
_WEIGHTED = {"Conv", "Gemm", "MatMul", "Convolution", "GroupConvolution", "CONV_2D", "DEPTHWISE_CONV_2D",
             "FULLY_CONNECTED", "BATCH_MATMUL", "ConvTranspose", "ConvolutionBackpropData"}
_SENSITIVE = {"Sigmoid", "Softmax", "LOGISTIC", "SOFTMAX", "SoftMax", "HardSigmoid", "Tanh", "TANH", "LogSoftmax",
              "LOG_SOFTMAX"}
_ADD = {"Add", "ADD", "Sum"}


def rank(layers: list[LayerDivergence], outputs: tuple[str, ...], limit: int = 3) -> list[Culprit]:
    """The few layers with the largest added error (at least 10% of the total), explained."""
    total = sum(layer.added_error for layer in layers)
    if total <= 1e-6:
        return []
    by_key = {layer.key: layer for layer in layers}
    merged: dict[str, Culprit] = {}  # one entry per blamed layer: a cause seen at two layers counts once
    for layer in sorted(layers, key=lambda layer: layer.added_error, reverse=True):
        if layer.added_error < 0.1 * total or layer.added_error < 1e-5:
            break
        reasons, remedies, keep = _explain(layer, by_key, outputs)
        name = keep[0]
        if name in merged:
            old = merged[name]
            merged[name] = old.model_copy(update={
                "added_error": old.added_error + layer.added_error, "share": old.share + layer.added_error / total,
                "reasons": list(dict.fromkeys([*old.reasons, *reasons])),
                "remedies": list(dict.fromkeys([*old.remedies, *remedies])),
                "keep_float": list(dict.fromkeys([*old.keep_float, *keep])),
            })
            continue
        blamed = by_key.get(next((lay.key for lay in layers if lay.name == name), layer.key), layer)
        merged[name] = Culprit(
            name=name, key=blamed.key, op_type=blamed.op_type, added_error=layer.added_error,
            share=layer.added_error / total, reasons=reasons, remedies=remedies, keep_float=keep,
        )
    return sorted(merged.values(), key=lambda c: c.added_error, reverse=True)[:limit]


def _explain(
    layer: LayerDivergence, by_key: dict[str, LayerDivergence], outputs: tuple[str, ...]
) -> tuple[list[str], list[str], list[str]]:
    reasons: list[str] = []
    remedies: list[str] = []
    keep = [layer.name]
    inputs = [by_key[k] for k in layer.inputs if k in by_key]
    outlier_inputs = [i for i in inputs if i.outlier_ratio >= OUTLIER_RATIO]
    sensitive = layer.op_type in _SENSITIVE and (layer.key in outputs or any(layer.key in o for o in outputs))
    if sensitive:  # a sigmoid/softmax output is skewed by nature: that is not the outlier case
        reasons.append(f"sensitive final layer ({layer.op_type}): its small outputs fall between int8 levels "
                       f"(step {layer.scale:.3g})" if layer.scale else f"sensitive final layer ({layer.op_type})")
        remedies.append(f"keep {layer.name} (and its input layer) in float")
        keep = list(dict.fromkeys([layer.name, *(i.name for i in inputs)]))
    elif outlier_inputs or layer.outlier_ratio >= OUTLIER_RATIO:
        own = layer.outlier_ratio >= OUTLIER_RATIO and (layer.scale is not None or not outlier_inputs)
        source = layer if own else max(outlier_inputs, key=lambda i: i.outlier_ratio)
        readers = [other.name for other in by_key.values() if source.key in other.inputs]
        reasons.append(
            f"outlier activations in {source.name}: max |x| is {source.outlier_ratio:.0f}x the 99th percentile, "
            "so a per-tensor int8 scale leaves few levels for the ordinary values"
        )
        remedies.append(f"keep {source.name} and the layer reading it in float, or use int16 activations there, "
                        "or percentile calibration to clip the outliers")
        keep = list(dict.fromkeys([source.name, *readers] if own else [source.name, layer.name]))
    if layer.saturated_fraction is not None and layer.saturated_fraction >= SATURATION:
        cal = layer.calibration_range
        seen = f"calibration saw [{cal[0]:.3g}, {cal[1]:.3g}], " if cal else ""
        ev = layer.evaluation_range
        reasons.append(f"saturated range: {100 * layer.saturated_fraction:.1f}% of values fall outside the quantized range "
                       f"({seen}evaluation [{ev[0]:.3g}, {ev[1]:.3g}])")
        remedies.append("calibrate on data that covers the evaluation range (more or more varied samples)")
    if layer.weight_channels == 1 and layer.op_type in _WEIGHTED:
        reasons.append("per-tensor weight scale: one scale for all output channels")
        remedies.append("quantize weights per channel (quantization={'per_channel': True})")
    near = _ancestors(layer, by_key, depth=2)
    for add in [layer, *near]:
        mismatch = _range_mismatch(add, by_key)
        if mismatch is not None:
            reasons.append(f"residual add {add.name} of branches whose ranges differ {mismatch:.0f}x: "
                           "the shared output scale crushes the smaller branch")
            remedies.append(f"keep {add.name} and the layers after it up to {layer.name} in float, or use int16 activations")
            keep = list(dict.fromkeys([add.name, *(a.name for a in near if a.index > add.index), layer.name, *keep[1:]]))
            break
    else:
        offset = next((i for i in inputs if _offset_ratio(i) >= OFFSET_RATIO), None)
        if offset is not None:
            reasons.append(f"narrow range on a large offset in {offset.name} (|x| up to {_absmax(offset):.3g}, spread "
                           f"{offset.evaluation_range[1] - offset.evaluation_range[0]:.3g}), as after a residual add of "
                           "mismatched branches: the int8 step is coarse next to the signal")
            remedies.append(f"keep {offset.name} and {layer.name} in float, or use int16 activations")
            keep = list(dict.fromkeys([offset.name, layer.name]))
    if not reasons:
        reasons.append(f"quantization error appears at this layer ({layer.op_type}); no single cause stands out")
        remedies.append(f"keep {layer.name} in float, or try per-channel weights / percentile calibration")
    return reasons, remedies, keep


def _range_mismatch(layer: LayerDivergence, by_key: dict[str, LayerDivergence]) -> float | None:
    """How many times the larger branch's range exceeds the smaller one's at an Add (None: no mismatch)."""
    branches = [by_key[k] for k in layer.inputs if k in by_key]
    if layer.op_type not in _ADD or len(branches) < 2:
        return None
    spans = sorted(max(abs(b.evaluation_range[0]), abs(b.evaluation_range[1])) for b in branches)
    if spans[0] <= 0 or spans[-1] / spans[0] < RANGE_MISMATCH:
        return None
    return spans[-1] / spans[0]


def _absmax(layer: LayerDivergence) -> float:
    return max(abs(layer.evaluation_range[0]), abs(layer.evaluation_range[1]))


def _offset_ratio(layer: LayerDivergence) -> float:
    spread = layer.evaluation_range[1] - layer.evaluation_range[0]
    return _absmax(layer) / spread if spread > 0 else 0.0


def _ancestors(layer: LayerDivergence, by_key: dict[str, LayerDivergence], depth: int) -> list[LayerDivergence]:
    """The compared layers up to ``depth`` hops upstream of ``layer``, nearest first."""
    found: list[LayerDivergence] = []
    frontier = [layer]
    for _ in range(depth):
        frontier = [by_key[k] for item in frontier for k in item.inputs if k in by_key and by_key[k] not in found]
        found.extend(frontier)
    return found
