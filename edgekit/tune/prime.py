"""The start of a tune run: fp32 and plain int8 of each int8 format built (the study's first trials, from the
build cache), then each format's float-layer sets from the best evidence there is.

- **The int8 rescue's curve**, when plain int8 misses the accuracy the study asks for (``accuracy_target``: its
  ``min_cosine`` / ``min_top1`` constraints, or, with neither, the profile's int8 validation tolerances, the
  rescue's default target). The rescue (``edgekit.rescue``) runs as a tune task (``rescue_curve``, on any
  executor) within ``rescue_budget`` seconds (None: ``edgekit.rescue.default_budget``, 2 minutes plus 4 per
  MiB of the int8 artifact, 30 at most; 0: no rescue), and the float layers of the steps it accepted, in the
  order walked from plain int8, are the format's float-layer sets: each one a build the rescue validated. Its
  last point becomes a trial of its own, after the plain baselines, when the space holds its scheme.
- **The divergence trace** of plain int8 (``trace_culprits``): prefixes of its ranked culprit groups, when plain
  int8 meets the target, the rescue is off or fails, or it accepted no step.

The notes say which source each format's sets came from. The sets are stored in the study with the space
(``Study.set_space``), so a resumed study neither rescues nor traces again; the rescue's build is cached by
content hash like a trial's, so a run killed while priming does not redo a finished rescue either. The rescue's
builds are deterministic, its stop is not always: one cut short by its time budget walks less of the curve on a
slower machine, so two new studies agree on their spaces when their rescues stop on the target or on no remedy
improving (the notes give the reason it stopped).
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

from edgekit.options import Tolerances
from edgekit.progress import ProgressCallback, ProgressEvent
from edgekit.tune.runner import Sources
from edgekit.tune.space import SearchSpace, TrialConfig, curve_sets, prefix_sets, with_sets
from edgekit.tune.tasks import (
    BuildOutcome,
    BuildRequest,
    RescueCurve,
    RescueRequest,
    TraceRequest,
    build_trial,
    describe,
    rescue_curve,
    trace_culprits,
)

#: the QuantScheme fields that are dimensions of the tune space, and the FormatSpace field holding their choices
DIMENSIONS = {"per_channel": "per_channel", "calibration_method": "calibration_methods", "activations": "activations"}


@dataclass(frozen=True)
class Primed:
    """The space with its float-layer sets, what the notes say about them, the rescue curves behind them and the
    rescue's last points as trials."""

    space: SearchSpace
    notes: list[str]
    curves: dict[str, RescueCurve]
    rescued: list[TrialConfig]


def plain(space: SearchSpace, fmt: str, precision: str) -> TrialConfig:
    """``fmt`` at ``precision`` with the first choice of every scheme dimension and no layer in float."""
    fspace = space.formats[fmt]
    quantization = ({"per_channel": fspace.per_channel[0], "calibration_method": fspace.calibration_methods[0],
                     "activations": fspace.activations[0]} if precision == "int8" else {})
    return TrialConfig(format=fmt, precision=precision, quantization=quantization, threads=space.threads[0],
                       accelerator=fspace.accelerator)


def baselines(space: SearchSpace) -> list[TrialConfig]:
    """The trials a study starts with: fp32 and plain int8 of every format (what ``edgekit convert`` builds)."""
    return [plain(space, fmt, p) for fmt, fs in space.formats.items() for p in ("fp32", "int8") if p in fs.precisions]


def accuracy_target(constraints: Mapping[str, float], tolerances: Tolerances) -> dict[str, float]:
    """The accuracy the study asks of int8, as a rescue target: ``min_cosine`` / ``min_top1`` when constrained,
    else the int8 validation ``tolerances`` (the profile's budgets, the defaults, ``tolerances=``)."""
    if "min_cosine" in constraints or "min_top1" in constraints:
        found = {"cosine": constraints.get("min_cosine"), "top1": constraints.get("min_top1")}
    else:
        found = {"cosine": tolerances.cosine, "top1": tolerances.top1_agreement}
    return {k: float(v) for k, v in found.items() if v}  # a zero bound asks nothing


def prime(pool: Any, sources: Sources, space: SearchSpace, target: dict[str, float], rescue_budget: float | None,
          emit: ProgressCallback) -> Primed:
    """Build fp32 and plain int8 of each format that has both, then give each its float-layer sets: from the rescue
    curve where plain int8 misses ``target``, else (or when the rescue gives no curve) from the trace."""
    formats = [fmt for fmt, fs in space.formats.items() if "int8" in fs.precisions and "fp32" in fs.precisions]
    if not formats:
        return Primed(space, [], {}, [])
    emit(ProgressEvent("tune:trace", 0.0, f"building fp32 and int8 of {', '.join(formats)} for the float-layer sets"))
    futures = {(fmt, p): pool.submit(build_trial, BuildRequest(plan=sources.plan(plain(space, fmt, p)),
                                                               cache_dir=sources.cache_dir))
               for fmt in formats for p in ("fp32", "int8")}
    wait(list(futures.values()))
    data = sources.validation or sources.calibration
    notes: list[str] = []
    pairs: dict[str, tuple[BuildOutcome, BuildOutcome]] = {}
    for fmt in formats:
        fp32, int8 = (_result(futures[(fmt, p)]) for p in ("fp32", "int8"))
        if data is None or isinstance(fp32, str) or isinstance(int8, str) or not fp32.artifact or not int8.artifact:
            why = next((r for r in (fp32, int8) if isinstance(r, str)), None) or "no data or no artifact to trace"
            notes.append(f"{fmt}: no float-layer sets ({why})")
        else:
            pairs[fmt] = fp32, int8
    why_not = {fmt: _no_rescue(int8, target, rescue_budget) for fmt, (_, int8) in pairs.items()}
    rescues = {fmt: _rescue(pool, sources, space, fmt, target, rescue_budget, emit)
               for fmt, why in why_not.items() if why is None}
    curves: dict[str, RescueCurve] = {}
    for fmt, future in rescues.items():
        curve = _result(future)
        if isinstance(curve, RescueCurve) and len(curve.points) > 1:
            curves[fmt] = curve
        else:
            why_not[fmt] = "the rescue gave no curve: " + (
                curve if isinstance(curve, str) else curve.reason or f"it accepted no step (stopped on {curve.stopped})")
    if rescues:
        emit(ProgressEvent("tune:rescue", 1.0, f"rescued {', '.join(curves) or 'none'} of {', '.join(rescues)}"))
    sets = {fmt: curve_sets([p.float_layers for p in curve.points]) for fmt, curve in curves.items()}
    notes.extend(_curve_note(fmt, curve, len(sets[fmt])) for fmt, curve in curves.items())
    traces = {fmt: _trace(pool, *pairs[fmt], data.path) for fmt in pairs if fmt not in curves}
    for fmt, future in traces.items():
        try:
            sets[fmt] = prefix_sets(future.result())
        except Exception as exc:  # a trace that fails leaves that format without float sets, said so
            notes.append(f"{fmt}: the divergence trace failed ({describe(exc)}): no float-layer sets")
            continue
        prefixes = len(sets[fmt]) - 1
        notes.append(f"{fmt}: float-layer sets from the divergence trace of plain int8 ({prefixes} prefix"
                     f"{'es' if prefixes != 1 else ''} of its ranked culprits; {why_not[fmt]})")
    emit(ProgressEvent("tune:trace", 1.0, "search space ready"))
    primed, rescued = with_sets(space, sets), []
    for fmt, curve in curves.items():
        config, unreachable = reach(curve, primed, fmt)
        notes.extend(unreachable)
        rescued.extend([config] if config is not None else [])
    return Primed(primed, notes, curves, rescued)


def reach(curve: RescueCurve, space: SearchSpace, fmt: str) -> tuple[TrialConfig | None, list[str]]:
    """The trial of the curve's last point (None when the space cannot hold it), and a note for each point whose
    scheme change is not a dimension of the space, or a value of one the space does not hold."""
    fspace, before = space.formats[fmt], curve.points[0].scheme
    notes, missing = [], []
    for index, point in enumerate(curve.points[1:], 1):
        missing = [f"{k}={v}" for k, v in point.scheme.items() if before.get(k) != v
                   and (k not in DIMENSIONS or v not in getattr(fspace, DIMENSIONS[k]))]
        if missing:
            notes.append(f"{fmt}: rescue step {index} (cosine {_number(point.cosine)}) also changed {', '.join(missing)}, "
                         "which the tune space does not hold: its float-layer set is searched with the space's schemes")
    if missing:  # the last point's
        return None, notes
    last = curve.points[-1]
    quantization = {k: last.scheme.get(k, getattr(fspace, field)[0]) for k, field in DIMENSIONS.items()}
    return TrialConfig(format=fmt, precision="int8", quantization=quantization, float_layers=last.float_layers,
                       threads=space.threads[0], accelerator=fspace.accelerator), notes


def _no_rescue(int8: BuildOutcome, target: dict[str, float], budget: float | None) -> str | None:
    """Why plain int8 is not rescued (None: it is)."""
    if not target:
        return "the study asks no accuracy of int8"
    cosine_ok = "cosine" not in target or (int8.cosine is not None and int8.cosine >= target["cosine"])
    top1_ok = "top1" not in target or int8.top1_agreement is None or int8.top1_agreement >= target["top1"]
    if cosine_ok and top1_ok:
        return f"plain int8 meets {_target_text(target)}: no rescue"
    if budget is not None and budget <= 0:
        return "the rescue is off (rescue_budget=0)"
    return None


def _rescue(pool: Any, sources: Sources, space: SearchSpace, fmt: str, target: dict[str, float], budget: float | None,
            emit: ProgressCallback) -> Future:
    emit(ProgressEvent("tune:rescue", 0.0, f"{fmt}: plain int8 misses {_target_text(target)}: rescuing it"))
    plan = sources.plan(plain(space, fmt, "int8"), rescue=True, accuracy_target=target, rescue_budget_s=budget)
    return pool.submit(rescue_curve, RescueRequest(plan=plan, cache_dir=sources.cache_dir))


def _curve_note(fmt: str, curve: RescueCurve, sets: int) -> str:
    first, last = curve.points[0], curve.points[-1]
    counted = f"{sets} float-layer set{'s' if sets > 1 else ''}"
    return (f"{fmt}: float-layer sets from the rescue curve ({len(curve.points)} points, cosine {_number(first.cosine)} "
            f"-> {_number(last.cosine)}; {counted}; target {'met' if curve.met else 'NOT met'}, stopped on "
            f"{curve.stopped}, {curve.seconds} s of a {_number(curve.budget_s)} s budget)")


def _trace(pool: Any, fp32: BuildOutcome, int8: BuildOutcome, data: str) -> Future:
    return pool.submit(trace_culprits, TraceRequest(artifact=int8.artifact, reference=fp32.artifact, data=data))


def _target_text(target: dict[str, float]) -> str:
    return " and ".join(f"{k} >= {v:g}" for k, v in target.items())


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.6g}"


def _result(future: Any) -> Any:
    try:
        return future.result()
    except Exception as exc:
        return describe(exc)
