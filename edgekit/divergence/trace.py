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
- streaming: both models run side by side one feed at a time and only sums, ranges, per-channel peaks and a
  bounded sample of |x| per layer are kept (``edgekit.divergence.stats``), so memory is one sample's tensors.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.divergence.model import Layer, ModelTrace
from edgekit.divergence.report import LayerDivergence
from edgekit.divergence.stats import PairStats, RangeStats, row_cosines, rows


def run_trace(path: Path, fmt: str, feeds: list[dict[str, np.ndarray]]) -> ModelTrace:
    """The model at ``path`` (a ``fmt`` artifact), to be run on ``feeds`` one at a time with every layer output
    exposed (the format package's ``trace`` adapter)."""
    from edgekit.formats import get_format

    return get_format(fmt).member("trace")(Path(path), feeds)


@dataclass
class Comparison:
    """What :func:`compare` found: per-layer rows, notes, and the model outputs' agreement."""

    layers: list[LayerDivergence]
    notes: list[str]
    output_cosine: float | None
    top1_agreement: float | None


@dataclass
class _Pair:
    layer: Layer  # the reference's
    art_key: str
    inputs: tuple[str, ...]
    stats: PairStats

    @property
    def key(self) -> str:
        return self.layer.key


def compare(reference: ModelTrace, artifact: ModelTrace, calibration: ModelTrace | None) -> Comparison:
    """Run ``reference`` and ``artifact`` side by side, one feed at a time, and measure each layer's
    divergence in the reference's layer order (``calibration``: the reference on the calibration feeds)."""
    ref_samples, art_samples = reference.samples(), artifact.samples()
    first = (next(ref_samples, None), next(art_samples, None))
    if first[0] is None or first[1] is None:
        return Comparison([], ["no evaluation sample to trace"], None, None)
    pairs, unmatched = _plan(reference, artifact, first[0], first[1])
    outputs = _output_pairs(reference, artifact, first[0], first[1])
    seen_art = set(first[1])
    for ref, act in itertools.chain([first], zip(ref_samples, art_samples)):
        seen_art &= set(act)
        for pair in pairs:
            if pair.key in ref and pair.art_key in act:
                pair.stats.add(ref[pair.key], act[pair.art_key].reshape(ref[pair.key].shape))
        for output in outputs:
            output.add(ref, act)
    for rest in (ref_samples, art_samples):  # let both runs finish (zip stops before asking the second for its end)
        next(rest, None)
    cal = _calibration_ranges(calibration, [p.key for p in pairs]) if calibration is not None else {}
    rows = _rows(pairs, artifact, cal)
    notes = []
    if unmatched:
        notes.append(f"{len(unmatched)} of {len(reference.layers)} reference layers have no counterpart in the artifact "
                     f"(fused or renamed by the converter): {', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}")
    missing = [key for key in artifact.keys if key not in seen_art]
    if missing:
        notes.append(f"the runtime did not expose {len(missing)} tensor(s) of the artifact")
    cosines = [o.cosine() for o in outputs]
    top1 = [o.top1() for o in outputs if o.top1() is not None]
    return Comparison(rows, notes, min(cosines) if cosines else None, min(top1) if top1 else None)


def _plan(
    reference: ModelTrace, artifact: ModelTrace, ref: dict[str, np.ndarray], act: dict[str, np.ndarray]
) -> tuple[list[_Pair], list[str]]:
    """The layers to compare (matched by key, alias or output position; shapes checked on the first feed)."""
    aliases = {**_positional_aliases(reference, artifact, set(ref), set(act)), **dict(zip(reference.outputs, artifact.outputs))}
    pairs: list[_Pair] = []
    compared: set[str] = set()
    unmatched: list[str] = []
    matched: dict[str, tuple[str, ...]] = {}  # layer key -> the compared layers it reads, through unmatched ones
    for layer in reference.layers:
        matched[layer.key] = tuple(dict.fromkeys(
            k for i in layer.inputs for k in ((i,) if i in compared else matched.get(i, ()))
        ))
        art_key = layer.key if layer.key in act else aliases.get(layer.key, layer.key)
        if layer.key not in ref or art_key not in act or ref[layer.key].size != act[art_key].size:
            unmatched.append(layer.key)
            continue
        q = artifact.quant.get(art_key)
        pairs.append(_Pair(layer, art_key, matched[layer.key], PairStats(q.representable() if q else None)))
        compared.add(layer.key)
    return pairs, unmatched


def _rows(pairs: list[_Pair], artifact: ModelTrace, cal: dict[str, RangeStats]) -> list[LayerDivergence]:
    errors: dict[str, float] = {}
    rows = []
    names = {layer.key: layer for layer in artifact.layers}
    for pair in pairs:
        stats = pair.stats
        if not stats.rows:
            continue
        cos = stats.cosine()
        error = 1.0 - cos
        inherited = max((errors[i] for i in pair.inputs if i in errors), default=0.0)
        errors[pair.key] = error
        q = artifact.quant.get(pair.art_key)
        source = cal.get(pair.key)
        rows.append(LayerDivergence(
            index=len(rows), name=names[pair.art_key].name if pair.art_key in names else pair.layer.name, key=pair.key,
            op_type=pair.layer.op_type, inputs=list(pair.inputs), cosine=cos, relative_error=stats.relative_error(),
            error=error, inherited_error=inherited, added_error=max(0.0, error - inherited),
            scale=q.scale if q else None, zero_point=q.zero_point if q else None,
            weight_channels=q.weight_channels if q else None,
            calibration_range=(source.low, source.high) if source is not None and source.count else None,
            evaluation_range=(stats.reference.low, stats.reference.high),
            saturated_fraction=stats.saturated_fraction(),
            outlier_ratio=(source if source is not None and source.count else stats.reference).outlier_ratio(),
        ))
    return rows


def _positional_aliases(
    reference: ModelTrace, artifact: ModelTrace, ref_keys: set[str], art_keys: set[str]
) -> dict[str, str]:
    """Layers whose names differ between the two conversions (generated names with counters), matched by
    position among the unmatched layers of the same op type when both have the same count of them."""
    ref_left = [lay for lay in reference.layers if lay.key not in art_keys]
    art_left = [lay for lay in artifact.layers if lay.key not in ref_keys]
    aliases = {}
    for op_type in {lay.op_type for lay in ref_left}:
        refs = [lay.key for lay in ref_left if lay.op_type == op_type]
        arts = [lay.key for lay in art_left if lay.op_type == op_type]
        if len(refs) == len(arts):
            aliases.update(zip(refs, arts))
    return aliases


def _calibration_ranges(calibration: ModelTrace, keys: list[str]) -> dict[str, RangeStats]:
    """Each key's range statistics over the reference run on the calibration feeds."""
    ranges = {key: RangeStats() for key in keys}
    for sample in calibration.samples():
        for key, stats in ranges.items():
            if key in sample:
                stats.add(sample[key])
    return ranges


class _OutputAgreement:
    """Cosine and (for classifier-shaped outputs) top-1 agreement of one model output, summed over feeds."""

    def __init__(self, key: str, art_key: str, classifier: bool) -> None:
        self.key, self.art_key, self.classifier = key, art_key, classifier
        self.cosine_sum, self.rows, self.same_top1 = 0.0, 0, 0

    def add(self, ref: dict[str, np.ndarray], act: dict[str, np.ndarray]) -> None:
        if self.key not in ref or self.art_key not in act:
            return
        reference = ref[self.key]
        actual = act[self.art_key].reshape(reference.shape)
        self.cosine_sum += float(np.sum(row_cosines(rows(reference), rows(actual))))
        self.rows += rows(reference).shape[0]
        if self.classifier:
            self.same_top1 += int(np.sum(reference.argmax(1) == actual.argmax(1)))

    def cosine(self) -> float:
        return float(np.clip(self.cosine_sum / max(self.rows, 1), -1.0, 1.0))

    def top1(self) -> float | None:
        return self.same_top1 / max(self.rows, 1) if self.classifier else None


def _output_pairs(
    reference: ModelTrace, artifact: ModelTrace, ref: dict[str, np.ndarray], act: dict[str, np.ndarray]
) -> list[_OutputAgreement]:
    pairs = []
    for key, art_key in zip(reference.outputs, artifact.outputs):
        art_key = key if key in act else art_key
        if key not in ref or art_key not in act or ref[key].size != act[art_key].size:
            continue
        pairs.append(_OutputAgreement(key, art_key, ref[key].ndim == 2 and ref[key].shape[1] > 1))
    return pairs
