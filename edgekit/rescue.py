"""Automatic int8 rescue: change the scheme or keep the most sensitive layers in float, one step at a time,
until the artifact meets an accuracy target with as few float layers as possible.

Each step builds the int8 artifact, validates it against the source (the target is the validation's
cosine and top-1 agreement) and, while the target is not met, traces it against the fp32 artifact of
the same format (``edgekit.divergence``) to choose the next step: per-channel weights when they were
per-tensor, then the top culprit's layers kept in float (where the device profile allows float
layers), then percentile calibration. The best artifact is published; when it misses the target its
validation fails, so the build says so and the artifact is kept, marked failed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, InvalidOptionError
from edgekit.options import Tolerances
from edgekit.session import RouteJob
from edgekit.specs import Artifact

MAX_STEPS = 6
TRACE_SAMPLES = 64
_KEYS = {"cosine": "cosine", "top1": "top1_agreement", "top1_agreement": "top1_agreement"}


def parse_target(target: Mapping[str, float] | str) -> Tolerances:
    """``{"cosine": 0.99, "top1": 0.97}`` or ``"cosine=0.99,top1=0.97"`` as validation thresholds."""
    if isinstance(target, str):
        pairs = [item.split("=", 1) for item in target.replace(" ", "").split(",") if item]
        if any(len(p) != 2 for p in pairs):
            raise InvalidOptionError(f"cannot read the accuracy target '{target}'", "write it as cosine=0.99,top1=0.97")
        target = dict(pairs)
    values: dict[str, float] = {}
    for key, value in dict(target).items():
        if key not in _KEYS:
            raise InvalidOptionError(f"unknown accuracy target '{key}'", "use cosine= and/or top1=")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidOptionError(f"the accuracy target {key}={value!r} is not a number", "e.g. cosine=0.99") from None
        if not 0.0 < number <= 1.0:
            raise InvalidOptionError(f"the accuracy target {key}={number} is outside (0, 1]", "e.g. cosine=0.99, top1=0.97")
        values[_KEYS[key]] = number
    if not values:
        raise InvalidOptionError("the accuracy target is empty", "e.g. cosine=0.99")
    return Tolerances(cosine=values.get("cosine", 0.0), top1_agreement=values.get("top1_agreement"))


def _meets(artifact: Artifact, target: Tolerances) -> bool:
    """The accuracy target alone (other validation gates, such as the int8 weight share, are judged on the final artifact)."""
    v = artifact.validation
    if v.cosine is None or v.cosine < target.cosine:
        return False
    return target.top1_agreement is None or v.top1_agreement is None or v.top1_agreement >= target.top1_agreement


def _score(artifact: Artifact, target: Tolerances) -> tuple[bool, bool, float, float]:
    v = artifact.validation
    top1 = v.top1_agreement if v.top1_agreement is not None else 1.0
    return _meets(artifact, target), v.status == "passed", top1, v.cosine or 0.0


def rescue_route(
    build: Callable[[RouteJob], Artifact], job: RouteJob, target: Tolerances, feeds: list[dict[str, Any]],
    *, allow_float: bool = True, max_steps: int = MAX_STEPS,
) -> tuple[Artifact, dict[str, Any]]:
    """Build ``job`` (an int8 route) to meet ``target``; returns the published artifact and the rescue record.

    ``build`` builds and validates one job (``BuildSession.build_route`` through the worker session).
    """
    from edgekit.divergence import debug

    target = job.tolerances.model_copy(update={"cosine": target.cosine, "top1_agreement": target.top1_agreement})
    job = replace(job, tolerances=target)
    work = job.staging_dir / "rescue"
    reference = build(_sub_job(replace(job, precision="fp32", calibration=[], tolerances=Tolerances.default_for("fp32"),
                                       float_layers=()), work / "reference"))
    steps: list[dict[str, Any]] = []
    notes: list[str] = [] if allow_float else ["the target device runs integer-only: no layer may stay in float"]
    current, best = job, None
    for index in range(max_steps):
        try:
            artifact = build(_sub_job(current, work / f"step{index}"))
        except EdgekitError as exc:
            if best is None:
                raise
            notes.append(f"step {index} could not be built ({exc.message}); kept the best earlier step")
            break
        steps.append(_step_record(current, artifact))
        if best is None or _score(artifact, target) > _score(best[1], target):
            best = (current, artifact)
        if _meets(artifact, target):
            break
        report = debug(artifact.path, feeds[:TRACE_SAMPLES], reference=reference.path, samples=TRACE_SAMPLES)
        steps[-1]["culprits"] = [{"name": c.name, "reasons": c.reasons} for c in report.culprits]
        following = _next_step(current, report, allow_float)
        if following is None:
            notes.append("no further step left to try")
            break
        current = following
    assert best is not None
    chosen = best[0]
    final = build(chosen)
    met = _meets(final, target)
    summary = (
        f"accuracy rescue: {'met' if met else 'did NOT meet'} the target (cosine >= {target.cosine}"
        + (f", top-1 >= {target.top1_agreement}" if target.top1_agreement else "")
        + f") after {len(steps)} step(s); kept in float: {', '.join(chosen.float_layers) or 'none'}"
        + ("" if chosen.scheme == job.scheme else f"; scheme changed to {_scheme_changes(job, chosen)}")
    )
    if met and final.validation.status != "passed":
        notes.append(f"the accuracy target is met but the artifact fails another gate: {final.validation.message}")
    record = {
        "target": target.model_dump(exclude_none=True), "met": met, "float_layers": list(chosen.float_layers),
        "scheme_changes": _scheme_changes(job, chosen), "steps": steps, "notes": notes,
        "size_bytes": final.size_bytes, "cosine": final.validation.cosine, "top1_agreement": final.validation.top1_agreement,
        "reference_size_bytes": reference.size_bytes,
    }
    return final.model_copy(update={"notes": (*final.notes, summary, *notes)}), record


def _sub_job(job: RouteJob, folder: Path) -> RouteJob:
    (folder / "staging").mkdir(parents=True, exist_ok=True)
    return replace(job, output_dir=folder, staging_dir=folder / "staging")


def _next_step(job: RouteJob, report: Any, allow_float: bool) -> RouteJob | None:
    """One change: per-channel weights, else the top culprit's layers in float, else percentile calibration."""
    if not job.scheme.per_channel:
        return replace(job, scheme=job.scheme.model_copy(update={"per_channel": True}))
    if allow_float:
        kept = set(job.float_layers)
        for culprit in report.culprits:
            new = [name for name in culprit.keep_float if name not in kept]
            if new:
                return replace(job, float_layers=(*job.float_layers, *new))
        worst = sorted(report.layers, key=lambda layer: layer.added_error, reverse=True)
        layer = next((lay for lay in worst if lay.name not in kept and lay.added_error > 0), None)
        if layer is not None:
            return replace(job, float_layers=(*job.float_layers, layer.name))
    if job.scheme.calibration_method == "minmax" and job.format != "tflite":
        return replace(job, scheme=job.scheme.model_copy(update={"calibration_method": "percentile"}))
    return None


def _step_record(job: RouteJob, artifact: Artifact) -> dict[str, Any]:
    return {
        "float_layers": list(job.float_layers), "per_channel": job.scheme.per_channel,
        "calibration_method": job.scheme.calibration_method, "cosine": artifact.validation.cosine,
        "top1_agreement": artifact.validation.top1_agreement, "size_bytes": artifact.size_bytes,
    }


def _scheme_changes(original: RouteJob, chosen: RouteJob) -> dict[str, Any]:
    before, after = original.scheme.model_dump(), chosen.scheme.model_dump()
    return {key: value for key, value in after.items() if before.get(key) != value}
