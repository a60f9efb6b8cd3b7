"""Parity of an artifact against its source: per-output error, cosine and top-1 agreement."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit import metrics
from edgekit.data import Feed
from edgekit.options import Tolerances
from edgekit.specs import OutputMetrics, TensorSpec, ValidationResult


def match_names(source: tuple[TensorSpec, ...], artifact: tuple[TensorSpec, ...], mapping: dict[str, str] | None = None) -> dict[str, str]:
    """Map each source tensor name to the artifact tensor that carries it.

    By the converter's mapping or equal names first; the rest by equal shape when that is unambiguous,
    then by position.
    """
    mapping = dict(mapping or {})
    artifact_names = [spec.name for spec in artifact]
    result = {name: mapping[name] for name in (s.name for s in source) if mapping.get(name) in artifact_names}
    result.update({s.name: s.name for s in source if s.name not in result and s.name in artifact_names})
    free = [a for a in artifact if a.name not in result.values()]
    for spec in (s for s in source if s.name not in result):
        same_shape = [a for a in free if _compatible(a.shape, spec.shape)]
        chosen = same_shape[0] if len(same_shape) == 1 else (free[0] if free else None)
        if chosen is not None:
            result[spec.name] = chosen.name
            free.remove(chosen)
    return result


def _compatible(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


#: below this many values per sample, a per-sample cosine only compares signs: the cosine is then
#: taken over all samples at once (e.g. a voice model's one speech probability per step)
PER_SAMPLE_COSINE_MIN_VALUES = 16
#: an output whose largest error is at most this is equal to the reference, whatever its cosine says
#: (a cosine of values near 1e-8 is rounding noise)
ABSOLUTE_ERROR_FLOOR = 1e-6


def output_metrics(name: str, reference: list[np.ndarray], actual: list[np.ndarray], classifier: bool) -> OutputMetrics:
    """Errors of one output over all samples; cosine is the mean of per-sample cosines, or for outputs
    of fewer than ``PER_SAMPLE_COSINE_MIN_VALUES`` values per sample the cosine over all samples."""
    ref_flat = [np.asarray(r, dtype=np.float64).ravel() for r in reference]
    act_flat = [np.asarray(a, dtype=np.float64).ravel() for a in actual]
    for r, a in zip(ref_flat, act_flat):
        if r.shape != a.shape:
            raise ValueError(f"output '{name}' has {a.size} values in the artifact but {r.size} in the source")
    if ref_flat and ref_flat[0].size >= PER_SAMPLE_COSINE_MIN_VALUES:
        cos = metrics.mean_cosine(ref_flat, act_flat)
    else:
        cos = metrics.cosine(np.concatenate(ref_flat), np.concatenate(act_flat))
    return OutputMetrics(
        name=name,
        max_abs_error=metrics.max_abs_error(ref_flat, act_flat),
        mean_abs_error=metrics.mean_abs_error(ref_flat, act_flat),
        cosine=cos,
        top1_agreement=metrics.top1_agreement(reference, actual) if classifier else None,
    )


def is_classifier_output(spec: TensorSpec) -> bool:
    return len(spec.shape) == 2 and (spec.shape[-1] or 0) >= 2 and spec.dtype.startswith("float")


def compare(
    references: list[Feed],
    actuals: list[Feed],
    outputs: tuple[TensorSpec, ...],
    tolerances: Tolerances,
    *,
    classifier: bool,
    executed_precision: str | None = None,
) -> ValidationResult:
    """Compare artifact outputs (already keyed by source output names) with the reference outputs."""
    per_output = []
    for spec in outputs:
        is_cls = classifier and is_classifier_output(spec)
        per_output.append(output_metrics(spec.name, [r[spec.name] for r in references], [a[spec.name] for a in actuals], is_cls))
    failing = [m.name for m in per_output if m.cosine < tolerances.cosine and m.max_abs_error > ABSOLUTE_ERROR_FLOOR]
    cosine = min(m.cosine for m in per_output)
    top1_values = [m.top1_agreement for m in per_output if m.top1_agreement is not None]
    top1 = min(top1_values) if top1_values else None
    thresholds = {"cosine": tolerances.cosine}
    passed = not failing
    if tolerances.top1_agreement is not None and top1 is not None:
        thresholds["top1_agreement"] = tolerances.top1_agreement
        passed = passed and top1 >= tolerances.top1_agreement
    return ValidationResult(
        status="passed" if passed else "failed",
        samples=len(references),
        max_abs_error=max(m.max_abs_error for m in per_output),
        mean_abs_error=float(np.mean([m.mean_abs_error for m in per_output])),
        cosine=cosine,
        top1_agreement=top1,
        thresholds=thresholds,
        outputs=tuple(per_output),
        executed_precision=executed_precision,
        message=None if passed else _failure_message(failing, cosine, top1, tolerances),
    )


def _failure_message(failing: list[str], cosine: float, top1: float | None, tolerances: Tolerances) -> str:
    parts = []
    if failing:
        parts.append(f"cosine {cosine:.5f} < {tolerances.cosine} on output(s) {', '.join(failing)}")
    if tolerances.top1_agreement is not None and top1 is not None and top1 < tolerances.top1_agreement:
        parts.append(f"top-1 agreement {top1:.3f} < {tolerances.top1_agreement}")
    return "; ".join(parts)


def check_quantized(result: ValidationResult, path: Path, fmt: str, tolerances: Tolerances) -> ValidationResult:
    """Count the artifact's weights stored as int8; fail an 'int8' artifact that is not really quantized."""
    from edgekit.weights import quantized_weight_fraction

    fraction = quantized_weight_fraction(path, fmt)
    update: dict = {"int8_weight_fraction": round(fraction, 4)}
    minimum = tolerances.min_int8_weight_fraction
    if minimum is not None:
        update["thresholds"] = {**result.thresholds, "min_int8_weight_fraction": minimum}
        if fraction < minimum:
            problem = f"only {fraction:.0%} of the weights are stored as int8 (< {minimum:.0%}): not really quantized"
            update.update(status="failed", message="; ".join(filter(None, [result.message, problem])))
    return result.model_copy(update=update)
