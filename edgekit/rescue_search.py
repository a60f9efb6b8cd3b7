"""The rescue's search: trace the current artifact (per-layer error attribution), then try remedies as real
builds, accepting a change only when the re-validated artifact is better, until the target, the time budget,
or no remedy improving.

Order per round: per-channel weights; the trace's float groups by ranked greedy with bisection (prefixes
of 1, 2, 4, ... groups until one meets the target, then bisection down to the smallest prefix that does;
when none does, the best prefix if it improves); then the whole-model scheme changes that keep every layer
in int8 (calibration, bias correction, SmoothQuant); then int16 activations. When the trace's attribution is
uncertain (``edgekit.rescue_sensitivity``), per-channel weights, then the whole-model changes, the elementwise
ops in float as one group and the measured per-group pass (float groups in the order it ranks them) by
expected gain per second of build time (``edgekit.rescue_order``): int16 activations first where allowed.

Every candidate built is timed as ``edgekit profile`` times it (``edgekit.rescue_latency``), so each point of
the curve carries its latency next to its accuracy and int8 share of compute.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.options import Tolerances
from edgekit.rescue_cost import int8_compute_share
from edgekit.rescue_latency import measure_against
from edgekit.rescue_order import build_seconds, plan
from edgekit.rescue_remedies import Allowed, Remedy, elementwise_remedy, float_remedies, floats_allowed, scheme_remedies
from edgekit.rescue_sensitivity import candidates, measured_order, uncertain
from edgekit.session import RouteJob
from edgekit.specs import Artifact

TRACE_SAMPLES = 16  # the sensitivity pass needs few samples; each accepted step is validated on all
MAX_GROUPS = 16  # float groups considered per round
MIN_INT8_SHARE = 0.8  # default floor of the int8 share of compute (Tolerances.min_int8_compute_share)


def meets(artifact: Artifact, target: Tolerances) -> bool:
    """The accuracy target alone (the other gates are judged on the final artifact)."""
    v = artifact.validation
    if v.cosine is None or v.cosine < target.cosine:
        return False
    return target.top1_agreement is None or v.top1_agreement is None or v.top1_agreement >= target.top1_agreement


def score(artifact: Artifact, target: Tolerances) -> tuple[bool, float, float]:
    v = artifact.validation
    return meets(artifact, target), v.top1_agreement if v.top1_agreement is not None else 1.0, v.cosine or 0.0


@dataclass
class Search:
    """One route's search state; ``tries`` records every build, ``curve`` the accepted points."""

    build: Callable[[RouteJob], Artifact]
    target: Tolerances
    feeds: list[dict[str, Any]]
    allowed: Allowed
    reference: Path
    work: Path
    deadline: float
    job: RouteJob
    artifact: Artifact
    tries: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    rejected: dict[str, frozenset[str]] = field(default_factory=dict)  # scheme change -> float layers when rejected
    shares: dict[str, float | None] = field(default_factory=dict)  # artifact path -> int8 share of compute
    sensitivity: list[dict[str, Any]] = field(default_factory=list)  # the measured per-group pass, when it ran
    built: dict[tuple[Any, ...], tuple[RouteJob, Artifact]] = field(default_factory=dict)  # builds by job content
    timed: bool = True  # time every candidate next to the plain artifact (edgekit.rescue_latency)
    stop: str = ""
    plain: str = ""  # the plain int8 artifact, against which every candidate is timed (default: ``artifact``)

    def __post_init__(self) -> None:
        self.plain = self.plain or str(self.artifact.path)

    def run(self) -> None:
        """Search until the target is met, the budget runs out or no remedy improves."""
        plain_scheme = self.job.scheme
        while not self.stop:
            if meets(self.artifact, self.target):
                self.stop = "target met"
                if self.job.float_layers and self.job.scheme != plain_scheme:
                    self._drop_float_layers()
                break
            report = self._trace()
            if report is None:
                break
            self.curve[-1]["culprits"] = [{"name": c.name, "reasons": c.reasons, "keep_float": c.keep_float}
                                          for c in report.culprits]
            if not self._round(report) and not self.stop:
                self.stop = "no remedy improves"

    def _trace(self) -> Any:
        from edgekit.divergence import debug

        if self._over():
            return None
        try:
            return debug(self.artifact.path, self.feeds[:TRACE_SAMPLES], reference=self.reference, samples=TRACE_SAMPLES)
        except EdgekitError as exc:
            self.notes.append(f"the divergence trace failed ({exc.message}): no layer-level remedy could be chosen")
            self.stop = "trace failed"
            return None

    def _round(self, report: Any) -> bool:
        """One round of remedies on the current job; True when a change was accepted."""
        op_types = {layer.op_type for layer in report.layers}
        schemes = scheme_remedies(self.job, self.allowed, op_types, self._not_retried())
        if any(self._try_accept(r) for r in schemes if r.kind == "per_channel"):
            return True
        schemes = [r for r in schemes if r.kind != "per_channel"]
        groups = float_remedies(self.job, report, self.allowed)[:MAX_GROUPS]
        if not uncertain(report):
            later = [r for r in schemes if r.kind != "int16_activations"]
            last = [r for r in schemes if r.kind == "int16_activations"]
            return self._float_search(groups) or any(self._try_accept(r) for r in [*later, *last])
        elementwise = elementwise_remedy(self.job, report, self.allowed, self.tried)
        measured = candidates(groups, report, set(self.job.float_layers)) if floats_allowed(self.job, self.allowed) else []
        steps = plan(schemes, elementwise, measured, report, build_seconds(self.tries), self.tried, set(self.rejected))
        self.curve[-1]["attribution"] = "uncertain: remedies by expected gain per second of build time"
        self.curve[-1]["order"] = [step.record() for step in steps]
        for step in steps:
            if step.remedy is not None and (self._try_accept(step.remedy) or self._split_search(step.remedy)):
                return True
            if step.remedy is None and self._measured_search(list(step.groups)):
                return True
            if self.stop:
                return False
        return False

    def _measured_search(self, groups: list[Remedy]) -> bool:
        """The measured sensitivity pass over ``groups``, then the ranked greedy search in the measured order."""
        base = score(self.artifact, self.target)
        ranked = measured_order(self, groups, lambda artifact: _gain(score(artifact, self.target), base))
        return self._float_search(ranked)

    def _split_search(self, group: Remedy) -> bool:
        """A group of layers that raised the metric but left too little compute in int8 (silero-vad's elementwise
        ops in float: 39% of its MACs kept int8 weights in ONNX Runtime's output): bisected, each half built on the current
        job; the affordable half with the largest gain is accepted (the first that meets the target at once), a
        half that helps but is still too costly is bisected again. At most two builds per layer of the group."""
        if len(group.layers) < 2:
            return False
        built = self.built.get((frozenset((*self.job.float_layers, *group.layers)), self.job.scheme.model_dump_json()))
        base = score(self.artifact, self.target)
        if built is None or _gain(score(built[1], self.target), base) <= 0 or self._affordable(built[1]):
            return False
        best: tuple[float, Remedy, tuple[RouteJob, Artifact]] | None = None
        pending = [group.layers]
        while pending and not self._over():
            layers = pending.pop(0)
            for half in (layers[:len(layers) // 2], layers[len(layers) // 2:]):
                remedy = Remedy("float", f"{len(half)} of the {len(group.layers)} layers of '{group.detail}' in float", half)
                found = self._try([remedy])
                gain = _gain(score(found[1], self.target), base) if found is not None else 0.0
                if found is None or gain <= 0:
                    continue
                if not self._affordable(found[1]):
                    pending.extend([half] if len(half) > 1 else [])
                elif meets(found[1], self.target):
                    return self._accept(found, [remedy])
                elif best is None or gain > best[0]:
                    best = gain, remedy, found
        return best is not None and self._accept(best[2], [best[1]])

    def _drop_float_layers(self) -> None:
        """Once a later scheme change met the target, the float layers accepted before it may not be needed."""
        built = self._try([], float_layers=())
        if built is not None and meets(built[1], self.target):
            self.job, self.artifact = built
            self.curve.append({**point(*built), **self._latency(built[0]), "remedies": ["drop_float_layers"]})
            self.tries[-1]["accepted"] = True

    def _not_retried(self) -> set[str]:
        """The remedies not to propose again: those tried, except a scheme change rejected before the float layers
        last changed (on the new job it may help: int16 activations that fail alone can work once the layers
        breaking their ranges are in float; ``edgekit.rescue_order`` tries it last)."""
        layers = frozenset(self.job.float_layers)
        return self.tried - {detail for detail, before in self.rejected.items() if before != layers}

    def _try_accept(self, remedy: Remedy) -> bool:
        self.tried.add(remedy.detail)
        built = self._try([remedy])
        if built is not None and self._accept(built, [remedy]):
            return True
        if remedy.scheme and not remedy.layers:
            self.rejected[remedy.detail] = frozenset(self.job.float_layers)
        return False

    def _float_search(self, groups: list[Remedy]) -> bool:
        """Ranked greedy with bisection over prefixes of ``groups``; True when a prefix was accepted."""
        results: dict[int, tuple[RouteJob, Artifact]] = {}
        sizes, size, meeting = [], 1, None
        while size < len(groups):
            sizes.append(size)
            size *= 2
        for size in [*sizes, len(groups)] if groups else []:
            built = self._try(groups[:size])
            if built is not None and not self._affordable(built[1]):
                break  # more float layers only lower the int8 share further
            if built is not None:
                results[size] = built
                if meets(built[1], self.target):
                    meeting = size
                    break
        if meeting is not None:
            low = max((k for k in results if k < meeting), default=0)
            high = meeting
            while high - low > 1 and not self._over():
                middle = (low + high) // 2
                built = self._try(groups[:middle])
                if built is not None:
                    results[middle] = built
                if built is not None and meets(built[1], self.target) and self._affordable(built[1]):
                    high = middle
                else:
                    low = middle
            return self._accept(results[high], groups[:high])
        if not results:
            return False
        # none meets the target: the smallest prefix that gets 90% of the best prefix's gain (greedy, not greedy for float)
        base = score(self.artifact, self.target)
        best = max(_gain(score(built[1], self.target), base) for built in results.values())
        if best <= 0:
            return False
        enough = min(k for k, built in results.items() if _gain(score(built[1], self.target), base) >= 0.9 * best)
        return self._accept(results[enough], groups[:enough])

    def _try(self, remedies: list[Remedy], float_layers: tuple[str, ...] | None = None) -> tuple[RouteJob, Artifact] | None:
        """Build and validate the current job with ``remedies`` applied, or with ``float_layers`` instead of its own
        (a route that cannot build it: None)."""
        if self._over():
            return None
        job = self.job if float_layers is None else replace(self.job, float_layers=float_layers)
        for remedy in remedies:
            job = remedy.apply(job)
        key = (frozenset(job.float_layers), job.scheme.model_dump_json())
        if key in self.built:  # the same candidate again (the sensitivity pass built it already)
            return self.built[key]
        started = time.monotonic()
        folder = self.work / f"try{len(self.tries)}"
        (folder / "staging").mkdir(parents=True, exist_ok=True)
        entry: dict[str, Any] = {"remedies": [{"kind": r.kind, "detail": r.detail, "layers": list(r.layers)} for r in remedies]
                                 or [{"kind": "drop_float_layers", "detail": "no layer in float", "layers": []}]}
        try:
            artifact = self.build(replace(job, output_dir=folder, staging_dir=folder / "staging"))
        except EdgekitError as exc:
            entry.update(error=exc.message, seconds=round(time.monotonic() - started, 2))
            self.tries.append(entry)
            if "cannot keep" in exc.message:  # a proposed name the route cannot apply: recorded as an error, never
                # skipped silently; the build keeps the best artifact so far instead of losing the route
                self.notes.append(f"error: the search proposed layers this route cannot keep in float ({exc.message}); "
                                  "the trace's layer names do not map to the quantizer's here")
                return None
            self.notes.append(f"{', '.join(r.detail for r in remedies)}: the route cannot build it ({exc.message})")
            return None
        seconds = round(time.monotonic() - started, 2)  # the build and its validation; the timing comes after
        entry.update(point(job, artifact, self.plain if self.timed else None), seconds=seconds, accepted=False)
        self.shares[artifact.path] = entry["int8_compute_share"]
        self.tries.append(entry)
        self.built[key] = job, artifact
        return job, artifact

    def _accept(self, built: tuple[RouteJob, Artifact], remedies: list[Remedy]) -> bool:
        job, artifact = built
        if score(artifact, self.target) <= score(self.artifact, self.target) or not self._affordable(artifact):
            return False
        self.job, self.artifact = job, artifact
        for entry in reversed(self.tries):
            if entry.get("float_layers") == list(job.float_layers) and entry.get("scheme") == job.scheme.model_dump():
                entry["accepted"] = True
                break
        self.curve.append({**point(job, artifact), **self._latency(job), "remedies": [r.kind for r in remedies]})
        return True

    def _latency(self, job: RouteJob) -> dict[str, Any]:
        """The latency fields measured when ``job`` was tried."""
        measured = next((t for t in reversed(self.tries) if t.get("float_layers") == list(job.float_layers)
                         and t.get("scheme") == job.scheme.model_dump()), {})
        return {k: v for k, v in measured.items() if "latency" in k or k == "executed_precision"}

    def _affordable(self, artifact: Artifact) -> bool:
        """The artifact keeps at least the floor of the compute plain int8 quantizes with int8 weights (recorded
        when it does not): layers the route never quantizes (float in plain int8 already) are not the search's cost."""
        floor = self.target.min_int8_compute_share
        floor = MIN_INT8_SHARE if floor is None else floor
        share, plain = self.shares.get(artifact.path), self.curve[0].get("int8_compute_share") if self.curve else None
        if share is None or share >= floor * (plain or 1.0):
            return True
        of = ("the compute in int8" if not plain or plain >= 1.0
              else f"the compute plain int8 quantizes ({100 * plain:.0f}%) in int8")
        note = f"changes leaving under {100 * floor:.0f}% of {of} were not accepted (min_int8_compute_share)"
        if note not in self.notes:
            self.notes.append(note)
        return False

    def _over(self) -> bool:
        if time.monotonic() > self.deadline:
            self.stop = "time budget"
            return True
        return False


def _gain(new: tuple[bool, float, float], old: tuple[bool, float, float]) -> float:
    """How much better ``new`` is than ``old`` in top-1 agreement plus cosine."""
    return (new[1] - old[1]) + (new[2] - old[2])


def point(job: RouteJob, artifact: Artifact, plain: str | None = None) -> dict[str, Any]:
    """One point of the accuracy-vs-int8-share curve; with the path of the ``plain`` int8 artifact, its median
    latency measured next to the plain one's."""
    found = {
        "float_layers": list(job.float_layers), "scheme": job.scheme.model_dump(),
        "cosine": artifact.validation.cosine, "top1_agreement": artifact.validation.top1_agreement,
        "int8_compute_share": int8_compute_share(artifact.path, artifact.format), "size_bytes": artifact.size_bytes,
    }
    return {**found, **measure_against(artifact.path, plain, artifact.format)} if plain else found
