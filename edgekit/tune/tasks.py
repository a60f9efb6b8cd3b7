"""The tasks of a tune run, as module-level functions of one picklable pydantic argument each, so that any
``TrialExecutor`` (this process's pool, or Ray on other nodes) can run them. Requests carry paths, not bytes:
the model, the data and the cache folder must be readable where the task runs (one machine, or a file system
every node mounts at the same path); a task on a node that cannot see them fails with a reason that says so.

- ``build_trial(BuildRequest) -> BuildOutcome``: the build of one configuration, cached by content hash
  (``PlanFile.key``): a configuration whose outcome is in the cache is never built again.
- ``measure_trial(MeasureRequest) -> Measurement``: the profiling protocol on one device (warm-up, timed
  runs, the median with its distribution-free 95% interval); a device that cannot be reached is a failed
  measurement with its reason, never an exception.
- ``trace_culprits(TraceRequest) -> list[list[str]]``: the divergence trace of a plain int8 artifact against
  its fp32 reference, as ranked groups of layers to keep in float.
- ``rescue_curve(RescueRequest) -> RescueCurve``: the int8 rescue (``edgekit.rescue``) of one format as a build
  cached like a trial's, and the accuracy-vs-int8-share curve of accepted steps its manifest records.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from edgekit.errors import Cancelled, ClusterError, EdgekitError, ManifestError
from edgekit.plan_file import PlanFile

OUTCOME_NAME = "outcome.json"
_STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGKILL")  # how edgekit.worker names a converter that was stopped
#: what a measurement's error says when the device could not be reached (the agent client's and the OS's words)
_GONE = ("unreachable", "no edgekit agent answers", "did not answer", "cannot reach", "connection", "timed out",
         "disconnected", "not reachable", "reset by peer")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BuildRequest(_Frozen):
    plan: PlanFile
    cache_dir: str  # builds/<key>/ under it holds the build folder and its outcome


class BuildOutcome(_Frozen):
    """What a trial's build gave: the artifact and its validation, or why there is none."""

    key: str
    status: Literal["built", "failed"]
    reason: str | None = None
    build_dir: str | None = None
    artifact: str | None = None
    format: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    validation: str | None = None  # passed / failed / inconclusive / error
    validation_message: str | None = None
    cosine: float | None = None
    top1_agreement: float | None = None
    accuracy: float | None = None
    samples: int | None = None
    seconds: float = 0.0
    cached: bool = False


class MeasureRequest(_Frozen):
    artifact: str
    device: str = "local:cpu"
    device_profile: str | None = None  # picks delegate / execution provider / OpenVINO device
    threads: int = 1
    runs: int = 50
    min_seconds: float = 1.0
    warmup: int = 10
    token: str | None = None
    timeout: float = 300.0


class Measurement(_Frozen):
    """The latency of one artifact on one device as the profiling protocol measured it."""

    status: Literal["complete", "failed"]
    device: str
    reason: str | None = None
    device_gone: bool = False  # the device could not be reached (the trial, not the study, fails)
    runs: int = 0
    median_ms: float | None = None
    ci_low_ms: float | None = None
    ci_high_ms: float | None = None
    confidence: float | None = None
    peak_rss_bytes: int | None = None
    accelerator: str | None = None
    executed_precision: str | None = None
    seconds: float = 0.0


class TraceRequest(_Frozen):
    artifact: str  # a plain int8 artifact
    reference: str  # the fp32 artifact of the same format
    data: str  # an .npy/.npz file of evaluation inputs
    samples: int = 16


def build_dir_of(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / "builds" / key[:20]


def build_trial(request: BuildRequest) -> BuildOutcome:
    """Build the request's plan into the cache (or return the cached outcome); a failure is an outcome."""
    key = request.plan.key
    plan = request.plan
    inputs = [(request.cache_dir, "the tune cache folder"), (plan.model.path, "the model")]
    inputs += [(data.path, what) for data, what in ((plan.calibration_data, "the calibration data"),
                                                    (plan.validation_data, "the validation data")) if data is not None]
    unseen = _first_unseen(inputs)
    if unseen is not None:
        return BuildOutcome(key=key, status="failed", reason=f"{unseen.message} ({unseen.hint})")
    folder = build_dir_of(request.cache_dir, key)
    cached = _cached(folder, key)
    if cached is not None:
        return cached.model_copy(update={"cached": True})
    started = time.monotonic()
    try:
        outcome = _build(request.plan, folder, key)
    except Cancelled:
        raise  # an interrupted build is no outcome: the configuration is built again on resume
    except EdgekitError as exc:
        outcome = BuildOutcome(key=key, status="failed", reason=f"{type(exc).__name__}: {exc.message}")
    outcome = outcome.model_copy(update={"seconds": round(time.monotonic() - started, 2)})
    if interrupted(outcome.reason):
        return outcome  # a worker stopped by a signal (Ctrl-C, a cancel, the OOM killer): not cached
    from edgekit.atomic import atomic_write_text

    folder.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder.parent / f"{key[:20]}.{OUTCOME_NAME}", outcome.model_dump_json(indent=2) + "\n")
    return outcome


def interrupted(reason: str | None) -> bool:
    """Whether a failure says its converter process was stopped by a signal rather than failing by itself."""
    return reason is not None and any(f"(signal {name})" in reason for name in _STOP_SIGNALS)


def _cached(folder: Path, key: str) -> BuildOutcome | None:
    path = folder.parent / f"{key[:20]}.{OUTCOME_NAME}"
    if not path.is_file():
        return None
    try:
        outcome = BuildOutcome.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if outcome.key != key or (outcome.artifact is not None and not Path(outcome.artifact).is_file()):
        return None
    return outcome


def _build(plan: PlanFile, folder: Path, key: str) -> BuildOutcome:
    from edgekit.pipeline import convert

    plan.check_files()
    kwargs = plan.convert_kwargs(folder)
    build = convert(kwargs.pop("model"), **kwargs)
    plan.save(folder.parent / f"{key[:20]}.plan.json")
    if not build.artifacts:
        reason = "; ".join(f"{f.route}: {f.error}" for f in build.failures) or "the route produced no artifact"
        return BuildOutcome(key=key, status="failed", reason=f"route error: {reason}", build_dir=str(folder))
    artifact = build.artifacts[0]
    v = artifact.validation
    status: Literal["built", "failed"] = "failed" if v.status in ("failed", "error") else "built"
    reason = f"validation {v.status}: {v.message}" if status == "failed" else None
    return BuildOutcome(
        key=key, status=status, reason=reason, build_dir=str(folder), artifact=artifact.path, format=artifact.format,
        size_bytes=artifact.size_bytes, sha256=artifact.sha256, validation=v.status, validation_message=v.message,
        cosine=v.cosine, top1_agreement=v.top1_agreement, accuracy=v.accuracy, samples=v.samples,
    )


def measure_trial(request: MeasureRequest) -> Measurement:
    """Profile the artifact on the request's device; every failure is a failed ``Measurement`` with its reason."""
    from edgekit.profiling import profile

    started = time.monotonic()
    unseen = unseen_here(request.artifact, "the artifact")
    if unseen is not None:
        return Measurement(status="failed", device=request.device, reason=f"{unseen.message} ({unseen.hint})")
    try:
        report = profile(request.artifact, device=request.device, device_profile=request.device_profile,
                         threads=request.threads, runs=request.runs, min_seconds=request.min_seconds,
                         warmup=request.warmup, op_profile_runs=0, token=request.token, timeout=request.timeout)
    except EdgekitError as exc:
        return Measurement(status="failed", device=request.device, reason=f"{type(exc).__name__}: {exc.message}",
                           device_gone=_unreachable(exc), seconds=round(time.monotonic() - started, 2))
    except OSError as exc:
        return Measurement(status="failed", device=request.device, reason=f"device unreachable: {exc}", device_gone=True,
                           seconds=round(time.monotonic() - started, 2))
    result = report.results[0]
    seconds = round(time.monotonic() - started, 2)
    if result.status != "complete" or result.median_ms is None:
        return Measurement(status="failed", device=request.device, reason=result.error or f"profiling {result.status}",
                           device_gone=_gone_text(result.error or ""), runs=result.runs, seconds=seconds)
    return Measurement(
        status="complete", device=request.device, runs=result.runs, median_ms=result.median_ms,
        ci_low_ms=result.median_ci_low_ms, ci_high_ms=result.median_ci_high_ms, confidence=result.median_ci_confidence,
        peak_rss_bytes=result.peak_rss_bytes, accelerator=result.accelerator, executed_precision=result.executed_precision,
        seconds=seconds,
    )


def _unreachable(exc: EdgekitError) -> bool:
    return _gone_text(exc.message)


def _gone_text(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _GONE)


def trace_culprits(request: TraceRequest) -> list[list[str]]:
    """The trace's ranked culprits as groups of layers to keep in float (most harmful first)."""
    from edgekit.divergence import debug

    unseen = _first_unseen([(request.artifact, "the int8 artifact"), (request.reference, "the fp32 artifact"),
                            (request.data, "the data")])
    if unseen is not None:
        raise unseen
    report = debug(request.artifact, request.data, reference=request.reference, samples=request.samples)
    return [list(culprit.keep_float) for culprit in report.culprits]


class RescueRequest(_Frozen):
    plan: PlanFile  # a plain int8 build with the rescue on (its accuracy target and time budget)
    cache_dir: str


class CurvePoint(_Frozen):
    """One accepted step of a rescue: what was built and what it measured."""

    float_layers: tuple[str, ...]
    scheme: dict[str, Any]  # the whole QuantScheme of the step
    cosine: float | None = None
    top1_agreement: float | None = None
    int8_compute_share: float | None = None
    size_bytes: int | None = None
    remedies: tuple[str, ...] = ()  # the remedy kinds the step applied (none: plain int8)


class RescueCurve(_Frozen):
    """A rescue's outcome: the curve it walked (plain int8 first), or why there is none."""

    label: str  # <format>/int8
    outcome: BuildOutcome
    points: tuple[CurvePoint, ...] = ()
    met: bool | None = None
    stopped: str | None = None
    seconds: float | None = None
    budget_s: float | None = None
    reason: str | None = None  # why no curve was recorded


def rescue_curve(request: RescueRequest) -> RescueCurve:
    """Build the request's int8 plan with its rescue (cached by content hash like a trial) and read the curve of
    accepted steps from the build's manifest; no manifest or no rescue record is a curve without points."""
    from edgekit.manifest import read_manifest

    fmt = request.plan.options.formats[0] if request.plan.options.formats else "?"
    label = f"{fmt}/int8"
    outcome = build_trial(BuildRequest(plan=request.plan, cache_dir=request.cache_dir))
    if outcome.build_dir is None or outcome.artifact is None:  # files not visible here, a route error
        return RescueCurve(label=label, outcome=outcome, reason=outcome.reason or "the rescue built nothing")
    try:
        record = read_manifest(outcome.build_dir)["config"]["run"].get("rescue", {}).get(label)
    except (ManifestError, KeyError, TypeError, AttributeError) as exc:
        why = exc.message if isinstance(exc, ManifestError) else f"no run section ({exc})"
        return RescueCurve(label=label, outcome=outcome, reason=f"the rescue's manifest cannot be read: {why}")
    if not isinstance(record, dict) or not record.get("curve"):
        return RescueCurve(label=label, outcome=outcome, reason=outcome.reason or "the build recorded no rescue curve")
    fields = set(CurvePoint.model_fields)
    try:
        points = tuple(CurvePoint.model_validate({k: v for k, v in p.items() if k in fields}) for p in record["curve"])
    except (ValueError, AttributeError) as exc:
        return RescueCurve(label=label, outcome=outcome, reason=f"the rescue's curve cannot be read: {exc}")
    return RescueCurve(label=label, outcome=outcome, points=points, met=record.get("met"), stopped=record.get("stopped"),
                       seconds=record.get("seconds"), budget_s=record.get("budget_s"))


def unseen_here(path: str, what: str) -> ClusterError | None:
    """Why a task cannot use ``path`` on this node (it is not there), or None when it is there."""
    if Path(path).exists():
        return None
    return ClusterError(f"{what} {path} is not visible on node {socket.gethostname()}",
                        "tune tasks read and write files by path: every Ray node that builds (CPUs) or measures "
                        "(--device) must mount the tune folder, the model and its data at the same path as the "
                        "machine running edgekit tune (a shared file system, see docs/RAY.md)")


def _first_unseen(paths: list[tuple[str, str]]) -> ClusterError | None:
    return next((error for error in (unseen_here(path, what) for path, what in paths) if error is not None), None)


def describe(value: Any) -> str:
    """A one-line reason for an exception a task raised (an executor's failure, not a trial's)."""
    if isinstance(value, EdgekitError):
        return f"{type(value).__name__}: {value.message}"
    return f"{type(value).__name__}: {value}"
