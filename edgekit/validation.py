"""Parity of an artifact against its source: per output, the metrics its kind needs, each with an interval."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from edgekit import metrics
from edgekit.data import Feed
from edgekit.options import Tolerances
from edgekit.output_kinds import guess_kind
from edgekit.specs import Check, OutputMetrics, TensorSpec, ValidationResult
from edgekit.verdict import CONFIDENCE, bootstrap_interval, mean_check, mean_interval, proportion_check, worst


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


def _global_cosine(ref: list[np.ndarray], act: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The cosine over all samples at once, as a statistic of resampled sample sets (per-sample sums)."""
    dot = np.array([float(np.dot(r, a)) for r, a in zip(ref, act)])
    rr = np.array([float(np.dot(r, r)) for r in ref])
    aa = np.array([float(np.dot(a, a)) for a in act])

    def statistic(idx: np.ndarray) -> np.ndarray:  # the rule of metrics.cosine: only two all-zero sets agree
        r_energy, a_energy = rr[idx].sum(axis=1), aa[idx].sum(axis=1)
        norm = np.sqrt(r_energy * a_energy)
        both_zero = np.where((r_energy == 0) & (a_energy == 0), 1.0, 0.0)
        return np.clip(np.where(norm > 0, dot[idx].sum(axis=1) / np.where(norm > 0, norm, 1.0), both_zero), -1.0, 1.0)

    return statistic


def output_metrics(
    name: str, reference: list[np.ndarray], actual: list[np.ndarray], classifier: bool = False, *,
    kind: str | None = None, tolerances: Tolerances | None = None, kind_source: str = "guessed",
    confidence: float = CONFIDENCE,
) -> OutputMetrics:
    """Errors of one output over all samples, each with its interval, judged by the rule of ``kind``.

    Cosine is the mean of per-sample cosines, or for outputs of fewer than ``PER_SAMPLE_COSINE_MIN_VALUES``
    values per sample the cosine over all samples. Without ``tolerances`` nothing is judged (measured only).
    """
    kind = kind or ("classifier" if classifier else "tensor")
    ref = [np.asarray(r, dtype=np.float64).ravel() for r in reference]
    act = [np.asarray(a, dtype=np.float64).ravel() for a in actual]
    for r, a in zip(ref, act):
        if r.shape != a.shape:
            raise ValueError(f"output '{name}' has {a.size} values in the artifact but {r.size} in the source")
    n = len(ref)
    per_sample_mae = np.array([np.abs(r - a).mean() if r.size else 0.0 for r, a in zip(ref, act)])
    max_abs = max((float(np.abs(r - a).max()) for r, a in zip(ref, act) if r.size), default=0.0)
    if ref and ref[0].size >= PER_SAMPLE_COSINE_MIN_VALUES:
        cosines = np.array([metrics.cosine(r, a) for r, a in zip(ref, act)])
        cosine, cos_ci = float(cosines.mean()), mean_interval(cosines, confidence=confidence)
    else:
        statistic = _global_cosine(ref, act)
        cosine = float(statistic(np.arange(n)[None, :])[0]) if n else 1.0
        cos_ci = bootstrap_interval(statistic, n, confidence=confidence)
    scale = float(np.sqrt(np.mean([np.dot(r, r) for r in ref]))) if n else 0.0
    relative = np.array([np.linalg.norm(r - a) for r, a in zip(ref, act)]) / max(scale, 1e-12)
    tol = tolerances
    equal = max_abs <= ABSOLUTE_ERROR_FLOOR  # equal to the reference to within rounding: every check passes
    cos_threshold = None if tol is None or kind == "regression" else (tol.detection_cosine if kind == "detection" else tol.cosine)
    checks = [
        mean_check("cosine", cosine, cos_ci, None if equal else cos_threshold, True, n),
        mean_check("relative_error", float(relative.mean()) if n else 0.0, mean_interval(relative, confidence=confidence),
                   tol.relative_error if tol is not None and kind == "regression" and not equal else None, False, n),
        mean_check("mean_abs_error", float(per_sample_mae.mean()) if n else 0.0,
                   mean_interval(per_sample_mae, confidence=confidence), None, False, n),
    ]
    top1 = None
    if kind == "classifier":
        agree = metrics.top1_matches(reference, actual)
        top1 = float(agree.mean()) if agree.size else None
        threshold = tol.top1_agreement if tol is not None else None
        checks.append(proportion_check("top1_agreement", int(agree.sum()), int(agree.size), threshold, confidence))
    if kind == "embedding" and tol is not None and tol.retrieval_agreement is not None and n >= 3:
        hits = _retrieval_agreement(ref, act)
        checks.append(proportion_check("retrieval_agreement", int(hits.sum()), n, tol.retrieval_agreement, confidence))
    judged = [c for c in checks if c.status != "measured"]
    return OutputMetrics(
        name=name, max_abs_error=max_abs, mean_abs_error=float(per_sample_mae.mean()) if n else 0.0, cosine=cosine,
        top1_agreement=top1, kind=kind, kind_source=kind_source, relative_error=float(relative.mean()) if n else 0.0,
        checks=tuple(checks), status=worst([c.status for c in judged]),
        rule=_rule(kind, judged, equal),
    )


def _rule(kind: str, judged: list[Check], equal: bool) -> str:
    if equal:
        return f"{kind}: max abs error <= {ABSOLUTE_ERROR_FLOOR:g} (equal to the reference)"
    if not judged:
        return f"{kind}: measured only"
    parts = [f"{c.metric} {'>=' if c.larger_is_better else '<='} {c.threshold:g}" for c in judged]
    return f"{kind}: " + " and ".join(parts) + " (whole interval)"


def _retrieval_agreement(ref: list[np.ndarray], act: list[np.ndarray]) -> np.ndarray:
    """Per sample: is its nearest other sample (by cosine) the same under the artifact as under the reference?"""
    def nearest(rows: list[np.ndarray]) -> np.ndarray:
        matrix = np.stack(rows)
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        similarity = matrix @ matrix.T
        np.fill_diagonal(similarity, -np.inf)
        return similarity.argmax(axis=1)

    return nearest(ref) == nearest(act)


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
    kinds: Mapping[str, str] | None = None,
    data_origin: str = "validation_data",
    on_calibration: bool = False,
) -> ValidationResult:
    """Compare artifact outputs (already keyed by source output names) with the reference outputs.

    ``classifier`` is the source's guess that its head is a classifier; ``kinds`` are declared output kinds
    (:mod:`edgekit.output_kinds`). The result is passed, failed or inconclusive by the intervals' rule
    (:mod:`edgekit.verdict`).
    """
    kinds = dict(kinds or {})
    task = "classifier" if classifier else "other"
    per_output = []
    for spec in outputs:
        ref = [r[spec.name] for r in references]
        kind = kinds.get(spec.name) or guess_kind(spec, task, ref)
        per_output.append(output_metrics(spec.name, ref, [a[spec.name] for a in actuals], kind=kind, tolerances=tolerances,
                                      kind_source="declared" if spec.name in kinds else "guessed"))
    lowest = min(per_output, key=lambda m: m.cosine)
    top1_metrics = [m for m in per_output if m.top1_agreement is not None]
    lowest_top1 = min(top1_metrics, key=lambda m: m.top1_agreement) if top1_metrics else None
    judged = [c for m in per_output for c in m.checks if c.status != "measured"]
    status = worst([m.status for m in per_output])
    thresholds = {"cosine": tolerances.cosine}
    if lowest_top1 is not None and tolerances.top1_agreement is not None:
        thresholds["top1_agreement"] = tolerances.top1_agreement
    if any(m.kind == "regression" for m in per_output):
        thresholds["relative_error"] = tolerances.relative_error
    needed = [c.samples_needed for c in judged if c.status == "inconclusive"]
    return ValidationResult(
        status=status,
        samples=len(references),
        max_abs_error=max(m.max_abs_error for m in per_output),
        mean_abs_error=float(np.mean([m.mean_abs_error for m in per_output])),
        cosine=lowest.cosine,
        cosine_interval=_interval(lowest.check("cosine")),
        top1_agreement=lowest_top1.top1_agreement if lowest_top1 else None,
        top1_interval=_interval(lowest_top1.check("top1_agreement")) if lowest_top1 else None,
        thresholds=thresholds,
        outputs=tuple(per_output),
        executed_precision=executed_precision,
        data_origin=data_origin,
        on_calibration=on_calibration,
        samples_needed=None if not needed or None in needed else max(needed),
        message=_verdict_message(per_output, status, on_calibration),
    )


def _interval(check: Check | None) -> tuple[float, float] | None:
    return None if check is None else (check.low, check.high)


def _verdict_message(metrics: list[OutputMetrics], status: str, on_calibration: bool) -> str | None:
    parts = [f"{m.name}: {c.describe()}" for m in metrics for c in m.checks if c.status in ("failed", "inconclusive")]
    if on_calibration:
        parts.append("validated on the calibration data (validate_on_calibration=True): the numbers are optimistic")
    return "; ".join(parts) if parts or status != "passed" else None


def accuracy_checks(reference_correct: np.ndarray, artifact_correct: np.ndarray,
                    confidence: float = CONFIDENCE) -> tuple[Check, Check]:
    """The artifact's accuracy (exact binomial interval) and its drop against the reference model on the same
    samples (paired bootstrap interval); both measured, judged by the accuracy budgets."""
    ref = np.asarray(reference_correct, dtype=np.float64)
    art = np.asarray(artifact_correct, dtype=np.float64)
    accuracy = proportion_check("accuracy", int(art.sum()), len(art), None, confidence)
    drop = ref - art
    low, high = mean_interval(drop, confidence=confidence)
    return accuracy, mean_check("accuracy_drop", float(drop.mean()) if len(drop) else 0.0, (low, high), None, False, len(drop))


def float_weights_reason(path: Path, fmt: str) -> str:
    """``"; float weights stay in LSTM (98304), ..."`` from the artifact itself, or "" when the format cannot tell."""
    from edgekit.formats import get_format

    spec = get_format(fmt)
    if spec.float_weights is None:
        return ""
    counts = spec.member("float_weights")(Path(path))
    total = sum(counts.values())
    if not total:
        return ""
    parts = [f"{name} ({n} weights, {n / total:.0%})" for name, n in counts.most_common(4)]
    return "; float weights stay in " + ", ".join(parts)


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
            problem += float_weights_reason(path, fmt)
            update.update(status="failed", message="; ".join(filter(None, [result.message, problem])))
    return result.model_copy(update=update)
