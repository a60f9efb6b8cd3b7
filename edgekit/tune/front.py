"""Trial records, objectives, constraints and the Pareto front, with latency compared by its intervals.

Latency is the median of the timed runs with its distribution-free 95% interval (``edgekit.profiling.protocol``).
Two trials whose latency intervals overlap are not ranked against each other on latency: neither is faster,
so neither dominates the other through latency, and both can stay on the front.

One run's interval describes the noise within that run only; on a shared machine two runs of the same
artifact differ by far more (the digits CNN's TFLite fp32: intervals of +-0.02 %, medians 2.67 to 3.87 us over
three rounds). So the interval used for ranking is at least a quarter octave wide (``LATENCY_STEP``: the median
/ 1.09 to the median x 1.09), and the sampler is told the latency snapped to a quarter-octave grid
(``told_values``): two trials within one step of each other are a tie for it too, and what it is told moves only
when a latency crosses a grid line, not with every measurement.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from edgekit.errors import InvalidOptionError
from edgekit.tune.space import TrialConfig
from edgekit.tune.tasks import BuildOutcome, Measurement

OBJECTIVES = {"latency": "minimize", "accuracy": "maximize", "size": "minimize", "memory": "minimize"}
LATENCY_STEP = 2 ** 0.25  # the latency resolution of a ranking: a quarter octave (x1.19)
CONSTRAINTS = ("max_latency_ms", "min_accuracy", "min_cosine", "min_top1", "max_size_bytes", "max_peak_memory_bytes")


class TrialRecord(BaseModel):
    """One trial as the study keeps it: configuration, build, measurement and how it ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    config: TrialConfig
    state: Literal["complete", "failed", "running", "interrupted", "duplicate"]
    reason: str | None = None
    build: BuildOutcome | None = None
    measurement: Measurement | None = None
    values: dict[str, float] = {}
    violations: list[str] = []

    @property
    def feasible(self) -> bool:
        return self.state == "complete" and not self.violations

    @property
    def interval(self) -> tuple[float, float] | None:
        """The measured 95% interval of the median latency."""
        m = self.measurement
        if m is None or m.median_ms is None:
            return None
        low = m.ci_low_ms if m.ci_low_ms is not None else m.median_ms
        return low, m.ci_high_ms if m.ci_high_ms is not None else m.median_ms

    @property
    def ranking_interval(self) -> tuple[float, float] | None:
        """The interval latency is ranked by: the measured one, widened to at least a quarter octave."""
        found, m = self.interval, self.measurement
        if found is None or m is None or m.median_ms is None:
            return None
        half = math.sqrt(LATENCY_STEP)
        return min(found[0], m.median_ms / half), max(found[1], m.median_ms * half)


def check_objectives(objectives: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives or len(set(objectives)) != len(objectives):
        raise InvalidOptionError(f"invalid objectives {list(objectives)}",
                                 f"choose (without repeats) from: {', '.join(OBJECTIVES)}")
    return tuple(objectives)


def check_constraints(constraints: dict[str, float] | None) -> dict[str, float]:
    found = dict(constraints or {})
    for key, value in found.items():
        if key not in CONSTRAINTS:
            raise InvalidOptionError(f"unknown constraint '{key}'", f"choose from: {', '.join(CONSTRAINTS)}")
        if not isinstance(value, int | float) or value < 0:
            raise InvalidOptionError(f"constraint {key}={value!r} is not a non-negative number", "e.g. max_latency_ms=5")
    return {k: float(v) for k, v in found.items()}


def accuracy_of(build: BuildOutcome) -> float | None:
    """The accuracy objective: top-1 against labels when the build had them, else top-1 agreement, else cosine."""
    for value in (build.accuracy, build.top1_agreement, build.cosine):
        if value is not None:
            return float(value)
    return None


def values_of(build: BuildOutcome, measurement: Measurement) -> dict[str, float | None]:
    return {"latency": measurement.median_ms, "accuracy": accuracy_of(build),
            "size": float(build.size_bytes) if build.size_bytes is not None else None,
            "memory": float(measurement.peak_rss_bytes) if measurement.peak_rss_bytes is not None else None}


def told_latency(median_ms: float) -> float:
    """The latency the sampler is told: the median snapped to the nearest point of a quarter-octave grid."""
    if median_ms <= 0:
        return median_ms
    return float(f"{LATENCY_STEP ** round(math.log(median_ms, LATENCY_STEP)):.6g}")


def told_values(record: TrialRecord, objectives: tuple[str, ...]) -> dict[str, float]:
    """A measured trial's objective values as the sampler is told them (latency snapped, the others as measured)."""
    return {o: told_latency(record.values[o]) if o == "latency" else record.values[o] for o in objectives if o in record.values}


def constraint_values(build: BuildOutcome, measurement: Measurement, constraints: dict[str, float]) -> list[float]:
    """One value per constraint, <= 0 when met (Optuna's convention)."""
    values = values_of(build, measurement)
    measured = {"max_latency_ms": values["latency"], "min_accuracy": values["accuracy"], "min_cosine": build.cosine,
                "min_top1": build.top1_agreement, "max_size_bytes": values["size"], "max_peak_memory_bytes": values["memory"]}
    found = []
    for key, bound in constraints.items():
        value = measured[key]
        if value is None:
            found.append(1.0)  # not measured: not met
        else:
            found.append(value - bound if key.startswith("max_") else bound - value)
    return found


def violations_of(constraints: dict[str, float], values: list[float]) -> list[str]:
    return [f"{key} {bound:g} not met" for (key, bound), value in zip(constraints.items(), values) if value > 0]


def _compare(a: TrialRecord, b: TrialRecord, objective: str) -> int:
    """1 when ``a`` is better than ``b`` on ``objective``, -1 when worse, 0 when tied (latency: intervals overlap)."""
    if objective == "latency":
        ia, ib = a.ranking_interval, b.ranking_interval
        if ia is None or ib is None:
            return 0
        return 1 if ia[1] < ib[0] else -1 if ib[1] < ia[0] else 0
    va, vb = a.values.get(objective), b.values.get(objective)
    if va is None or vb is None or va == vb:
        return 0
    better = va < vb if OBJECTIVES[objective] == "minimize" else va > vb
    return 1 if better else -1


def dominates(a: TrialRecord, b: TrialRecord, objectives: tuple[str, ...]) -> bool:
    results = [_compare(a, b, o) for o in objectives]
    return all(r >= 0 for r in results) and any(r > 0 for r in results)


def measured_configs(records: list[TrialRecord]) -> list[TrialRecord]:
    """Feasible built trials, one per configuration (its first measurement)."""
    seen: set[tuple[str, int]] = set()
    found = []
    for record in records:
        if not record.feasible or record.build is None:
            continue
        ident = (record.build.key, record.config.threads)
        if ident not in seen:
            seen.add(ident)
            found.append(record)
    return found


def pareto_front(records: list[TrialRecord], objectives: tuple[str, ...]) -> list[TrialRecord]:
    """Feasible trials no other feasible trial dominates; one per configuration (its first measurement)."""
    candidates = measured_configs(records)
    front = [r for r in candidates if not any(dominates(o, r, objectives) for o in candidates if o is not r)]
    return sorted(front, key=lambda r: r.values.get("latency", float("inf")))


def fastest(records: list[TrialRecord]) -> tuple[TrialRecord | None, list[TrialRecord]]:
    """The feasible trial with the lowest median latency, and the feasible ones whose ranking interval overlaps
    it (tied). Taken over every feasible trial, not the front only: a point tied in latency with a smaller or more
    accurate one leaves the front, yet it may be the faster of the two."""
    timed = [r for r in measured_configs(records) if r.ranking_interval is not None]
    if not timed:
        return None, []
    best = min(timed, key=lambda r: r.values["latency"])
    low, high = best.ranking_interval  # type: ignore[misc]
    tied = [r for r in timed if r is not best and r.ranking_interval[0] <= high and r.ranking_interval[1] >= low]  # type: ignore[index]
    return best, tied


def summary_row(record: TrialRecord) -> dict[str, Any]:
    """The fields a table or plot shows for one trial."""
    m, b = record.measurement, record.build
    return {"trial": record.number, "config": record.config.label(), "state": record.state,
            "latency_ms": m.median_ms if m else None, "interval": record.interval,
            "accuracy": record.values.get("accuracy"), "size_bytes": b.size_bytes if b else None,
            "reason": record.reason, "violations": record.violations}
