"""The order of the rescue's remedies when the trace's attribution is uncertain: expected gain per second of
build time, highest first.

When no culprit stands out (PP-OCRv4 det: the error spread over ~200 elementwise ops, each adding a little),
the trace cannot say which layer to keep in float, and every candidate is a full build and validation (minutes
on a real detector). Each remedy is then given the share of the remaining error it is expected to remove and
the seconds its builds are expected to take, and they are tried in the order of that ratio:

- a whole-model scheme change removes a fixed share (``EXPECTED_SHARE``): int16 activations make every
  activation's rounding step 256x finer, which is where a spread error comes from; calibration clips the range
  outliers the int8 grid is spent on (a second method after a first one, half of that); bias correction and
  SmoothQuant correct a systematic shift;
- a float group removes ``FLOAT_RECOVERY`` of the added error the trace attributes to its layers (a layer in
  float still reads and feeds int8 tensors, so its neighbours' rounding remains): the elementwise ops as one
  group, and the measured sensitivity pass over the candidate groups, which costs one build per group plus the
  greedy search's builds after it.

A scheme change rejected on an earlier job is proposed again once the float layers changed, but last: it did not
help alone, it may once the float groups have run out (silero-vad: int16 activations 0.245 alone, 0.9994 once
three layers are in float). A build's expected seconds are those measured for the same kind of remedy in this
search, else the mean of the search's builds so far; before any build every build counts the same. The plan is
recorded on the curve.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from edgekit.rescue_remedies import Remedy

EXPECTED_SHARE = {"int16_activations": 0.9, "calibration": 0.4, "bias_correction": 0.25, "smooth_quant": 0.25}
SECOND_CALIBRATION = 0.5  # the second calibration method after the first one was tried: half the expected share
FLOAT_RECOVERY = 0.5  # share of a float group's attributed added error that keeping it in float removes
SENSITIVITY = "sensitivity"  # the kind of the measured pass's step


@dataclass(frozen=True)
class Step:
    """One step of the plan: a remedy to build, or the measured pass (``remedy`` None) over ``groups``."""

    kind: str
    detail: str
    expected_share: float  # of the remaining error
    builds: float
    seconds: float  # expected, for all its builds
    remedy: Remedy | None = None
    groups: tuple[Remedy, ...] = ()
    retry: bool = False  # a scheme change rejected on an earlier job: tried after the others

    @property
    def rate(self) -> float:
        """Expected share of the remaining error removed per second of build time."""
        return self.expected_share / max(self.seconds, 1e-3)

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "expected_share": round(self.expected_share, 4),
                "builds": self.builds, "expected_s": round(self.seconds, 1), "share_per_s": round(self.rate, 6),
                **({"retry": True} if self.retry else {})}


def build_seconds(tries: list[dict[str, Any]]) -> Callable[[str], float]:
    """Expected seconds of one build of a kind of remedy, from the builds ``tries`` recorded (1.0 when none)."""
    timed = [t for t in tries if t.get("seconds") and not t.get("error")]
    overall = statistics.fmean(t["seconds"] for t in timed) if timed else 1.0

    def seconds(kind: str) -> float:
        same = [t["seconds"] for t in timed if any(r["kind"] == kind for r in t["remedies"])]
        return statistics.median(same) if same else overall

    return seconds


def attributed(report: Any, layers: set[str]) -> float:
    """The share of the trace's summed added error that appears at ``layers``."""
    total = sum(layer.added_error for layer in report.layers)
    return sum(layer.added_error for layer in report.layers if layer.name in layers) / total if total > 0 else 0.0


def plan(schemes: list[Remedy], elementwise: Remedy | None, measured: list[Remedy], report: Any,
         seconds: Callable[[str], float], tried: set[str], rejected: Collection[str] = ()) -> list[Step]:
    """The remedies to try on an uncertain attribution, by expected gain per second of build time.

    ``schemes``: the whole-model changes to try; ``elementwise``: the elementwise ops in float (or None);
    ``measured``: the groups the measured pass would build (empty: no pass); ``tried``: remedies tried before;
    ``rejected``: the scheme changes built and rejected on an earlier job (tried last)."""
    steps = []
    for remedy in schemes:
        share = EXPECTED_SHARE.get(remedy.kind, 0.1)
        if remedy.kind == "calibration" and any(d.endswith(" calibration") and d != remedy.detail for d in tried):
            share *= SECOND_CALIBRATION
        steps.append(Step(remedy.kind, remedy.detail, share, 1, seconds(remedy.kind), remedy=remedy,
                          retry=remedy.detail in rejected))
    if elementwise is not None:
        share = FLOAT_RECOVERY * attributed(report, set(elementwise.layers))
        steps.append(Step(elementwise.kind, elementwise.detail, share, 1, seconds(elementwise.kind), remedy=elementwise))
    if measured:
        share = FLOAT_RECOVERY * attributed(report, {n for group in measured for n in group.layers})
        builds = len(measured) + math.ceil(math.log2(len(measured))) + 1  # each group alone, then the greedy prefixes
        steps.append(Step(SENSITIVITY, f"measured sensitivity pass over {len(measured)} float groups, then the greedy "
                          "search", share, builds, builds * seconds("float"), groups=tuple(measured)))
    return sorted(steps, key=lambda step: (step.retry, -step.rate))
