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
from edgekit.errors import EdgekitError, InvalidOptionError
from edgekit.options import QuantScheme
from edgekit.profiles import Budgets, DeviceProfile
from edgekit.specs import Artifact, TensorSpec


class IncompatibleTargetError(EdgekitError):
    """The model breaks a hard limit of the target device (an op it cannot run, a dynamic shape, a precision)."""


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
    """Pass/fail per budget; budgets edgekit does not measure in a build are listed as ``not_measured``."""
    v = artifact.validation
    baseline = baseline_accuracy if baseline_accuracy is not None else v.reference_accuracy
    drop = baseline - v.accuracy if baseline is not None and v.accuracy is not None else None
    measured: dict[str, tuple[float | None, bool]] = {  # name -> (value, larger is better)
        "max_size_bytes": (float(artifact.size_bytes), False),
        "min_cosine": (v.cosine, True),
        "min_top1_agreement": (v.top1_agreement, True),
        "min_accuracy": (v.accuracy, True),
        "max_accuracy_drop": (None if drop is None else round(drop, 6), False),
    }
    checks = []
    for name, limit in budgets.model_dump().items():
        if limit is None:
            continue
        value, larger = measured.get(name, (None, True))
        if value is None:
            checks.append(BudgetCheck(name=name, limit=limit, status="not_measured",
                                      message="not measured by a build (needs a device run or labelled data)"))
            continue
        ok = value >= limit if larger else value <= limit
        checks.append(BudgetCheck(name=name, limit=limit, value=value, status="passed" if ok else "failed",
                                  message="" if ok else f"{name}: {value:g} {'<' if larger else '>'} {limit:g}"))
    return tuple(checks)
