"""What ``edgekit.convert`` does with a target profile beyond formats and precision.

Static shapes a profile demands, the compatibility check before any conversion (refusing a target whose
hard limits are broken unless ``force=True``), the check of each artifact's real ops after conversion,
and budgets (size, parity, accuracy) as a pass/fail gate per artifact.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from edgekit.compat.check import check_artifact, evaluate
from edgekit.compat.report import BudgetCheck, CompatibilityReport
from edgekit.errors import EdgekitError, IncompatibleTargetError, InvalidOptionError
from edgekit.options import QuantScheme
from edgekit.profiles import Budgets, DeviceProfile
from edgekit.specs import Artifact, TensorSpec
from edgekit.verdict import judge, samples_for_mean, samples_for_proportion


def complete_static_shapes(profile: DeviceProfile, inputs: Sequence[TensorSpec], fixed: dict[str, tuple[int, ...]],
                           feeds: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, ...]]:
    """For a ``static_shapes`` profile, a static shape for every input: ``fixed`` first, then the first data
    feed's shape, then batch 1; a dynamic dimension none of these decides is a clear error."""
    if not profile.static_shapes:
        return fixed
    result = dict(fixed)
    for spec in inputs:
        if spec.name in result or not spec.is_dynamic:
            continue
        sample = feeds[0].get(spec.name) if feeds else None
        if sample is not None and len(sample.shape) == len(spec.shape):
            result[spec.name] = tuple(int(d) for d in sample.shape)
            continue
        shape = [1 if d is None and i == 0 else d for i, d in enumerate(spec.shape)]
        if None in shape:
            raise IncompatibleTargetError(
                f"{profile.name} needs static shapes, and input {spec.describe()} has dynamic dimensions edgekit cannot decide",
                f"give input_shapes={{'{spec.name}': [...]}} / --input-shape {spec.name}=..., or calibration/validation data",
            )
        result[spec.name] = tuple(shape)
    return result


def precheck(ops: list, profile: DeviceProfile, source: Any, formats: Sequence[str], precisions: Sequence[str],
             scheme: QuantScheme, fixed: Mapping[str, Sequence[int]], force: bool) -> list[CompatibilityReport]:
    """The source model checked for each precision to build; raises when a hard limit breaks and not ``force``."""
    exact = ("onnx",) if source.framework == "onnx" else ()
    reports = [evaluate({fmt: ops for fmt in formats}, profile, precision=precision, scheme=scheme, inputs=source.inputs,
                        exact_formats=exact, fixed_shapes=fixed) for precision in precisions]
    blocking = [f for report in reports for f in report.blocking if f.kind != "route"]  # a refusing route fails alone
    if blocking and not force:
        listed = "\n".join(f"  - {f.message} (hint: {f.hint})" for f in blocking[:10])
        more = f"\n  ... and {len(blocking) - 10} more" if len(blocking) > 10 else ""
        raise IncompatibleTargetError(
            f"the model breaks hard limits of {profile.name}:\n{listed}{more}",
            "fix the model or options as hinted, run `edgekit check` for the full list, "
            "or build anyway with force=True / --force",
        )
    return reports


def budgets_for(profile: DeviceProfile, overrides: Mapping[str, Any] | None) -> Budgets:
    """The profile's budgets with ``budgets=`` / ``--budget`` overrides applied."""
    if not overrides:
        return profile.budgets
    try:
        return Budgets.model_validate({**profile.budgets.model_dump(), **dict(overrides)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidOptionError(f"invalid budgets: {problems}", f"budgets: {', '.join(Budgets.model_fields)}") from None


def finish_artifact(artifact: Artifact, profile: DeviceProfile, budgets: Budgets, baseline_accuracy: float | None = None) -> Artifact:
    """The artifact with its own ops checked against ``profile`` and its budgets judged.

    ``baseline_accuracy`` is the source's accuracy before any optimization (default: the converted model's)."""
    try:
        # the inputs as the file declares them: a route may fix shapes without restating them in its specs
        report = check_artifact(artifact.path, artifact.format, profile, precision=artifact.precision)
    except EdgekitError:
        report = None
    return artifact.model_copy(update={"compatibility": report, "budgets": judge_budgets(artifact, budgets, baseline_accuracy)})


def judge_budgets(artifact: Artifact, budgets: Budgets, baseline_accuracy: float | None = None) -> tuple[BudgetCheck, ...]:
    """Verdict per budget by its confidence interval (``edgekit.verdict``: passed when the whole interval clears
    the limit, failed when it misses it, inconclusive otherwise); budgets a build does not measure are
    ``not_measured``."""
    measured = _measured(artifact, baseline_accuracy)
    checks = []
    for name, limit in budgets.model_dump().items():
        if limit is None:
            continue
        value, interval, larger, samples = measured.get(name, (None, None, True, 0))
        if value is None:
            checks.append(BudgetCheck(name=name, limit=limit, status="not_measured",
                                      message="not measured by a build (needs a device run or labelled data)"))
            continue
        low, high = interval or (value, value)
        status = judge(low, high, limit, larger)
        needed = None
        if status == "inconclusive" and samples:
            needed = (samples_for_proportion(value, limit, samples) if name in ("min_top1_agreement", "min_accuracy")
                      else samples_for_mean(value, low, high, limit, samples))
        side = "<" if larger else ">"
        ci = f" [{low:.4g}, {high:.4g}]" if interval else ""
        message = {"passed": "", "failed": f"{name}: {value:g}{ci} {side} {limit:g}",
                   "inconclusive": f"{name}: {value:g}{ci} straddles {limit:g}"
                                   + (f" (about {needed} samples would decide it)" if needed else "")}[status]
        checks.append(BudgetCheck(name=name, limit=limit, value=value, status=status, message=message,
                                  interval=interval, samples_needed=needed))
    return tuple(checks)


def _measured(artifact: Artifact, baseline_accuracy: float | None) -> dict[str, tuple]:
    """name -> (value, interval or None, larger is better, samples)."""
    v = artifact.validation
    cosine = min((m for m in v.outputs), key=lambda m: m.cosine, default=None)
    cosine_check = cosine.check("cosine") if cosine is not None else None
    top1 = [m.check("top1_agreement") for m in v.outputs if m.check("top1_agreement") is not None]
    top1_check = min(top1, key=lambda c: c.value) if top1 else None
    acc, drop_check = v.accuracy_check, v.accuracy_drop_check
    baseline = baseline_accuracy if baseline_accuracy is not None else v.reference_accuracy
    drop = drop_interval = None
    if baseline is not None and v.accuracy is not None:
        drop = round(baseline - v.accuracy, 6)
        if drop_check is not None and v.reference_accuracy is not None:  # paired interval, shifted to the baseline
            shift = baseline - v.reference_accuracy
            drop_interval = (drop_check.low + shift, drop_check.high + shift)

    def with_ci(check) -> tuple:
        return (check.low, check.high) if check is not None else None

    return {
        "max_size_bytes": (float(artifact.size_bytes), None, False, 0),
        "min_cosine": (v.cosine, with_ci(cosine_check) or v.cosine_interval, True, v.samples),
        "min_top1_agreement": (v.top1_agreement, with_ci(top1_check) or v.top1_interval, True, v.samples),
        "min_accuracy": (v.accuracy, with_ci(acc), True, acc.samples if acc else 0),
        "max_accuracy_drop": (drop, drop_interval, False, drop_check.samples if drop_check else 0),
    }


def rejudge_size(artifact: Artifact, budgets: Budgets) -> Artifact:
    """The artifact with its size budget judged again (its files changed after ``finish_artifact``: the contract
    written into them); every other budget as judged before."""
    fresh = {check.name: check for check in judge_budgets(artifact, budgets) if check.name == "max_size_bytes"}
    return artifact.model_copy(update={"budgets": tuple(fresh.get(check.name, check) for check in artifact.budgets)})
