"""What a rescue candidate costs in time: its median latency, measured as ``edgekit profile`` measures.

Each artifact is timed in a fresh process by the profiling child (``edgekit.profiling.local``), one thread,
with a shorter protocol than a profile run (the curve compares candidates of one model on one machine in
one run, so the medians are read as ratios, with their confidence interval recorded next to them). A
candidate is timed next to the plain int8 artifact, and the ratio of the two is recorded with them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.profiling.protocol import Settings

#: the protocol for a rescue candidate: warm-up, then at least 30 timed runs over at least half a second
SETTINGS = Settings(warmup_runs=5, min_runs=30, min_seconds=0.5, max_runs=2000, threads=1, op_profile_runs=0,
                    timeout_seconds=60.0)


def measure_against(path: str | Path, baseline: str | Path, fmt: str) -> dict[str, Any]:
    """The latency of ``path`` and, measured right after it on the same machine, of ``baseline`` (the plain
    int8 artifact): their ratio stays readable when the machine's load drifts between candidates."""
    found = measure_latency(path, fmt)
    plain = measure_latency(baseline, fmt).get("latency_ms")
    if found.get("latency_ms") and plain:
        found.update(plain_latency_ms=plain, latency_vs_plain=round(found["latency_ms"] / plain, 3))
    return found


def measure_latency(path: str | Path, fmt: str, settings: Settings = SETTINGS) -> dict[str, Any]:
    """Median single-inference latency of the artifact at ``path`` in ms, with its 95% interval and run count
    (``error`` instead when the measurement failed: the candidate's accuracy still counts)."""
    from edgekit.profiling.local import Job, ResultBuilder, run_child

    builder = ResultBuilder({"artifact": str(path), "format": fmt, "size_bytes": Path(path).stat().st_size,
                             "device": "host"})
    run_child(Job(path=str(path), format=fmt, settings=settings), builder.feed)
    result = builder.result()
    if result.median_ms is None:
        return {"latency_ms": None, "latency_error": result.error or "no timed run finished"}
    return {
        "latency_ms": round(result.median_ms, 4),
        "latency_ci_ms": [round(result.median_ci_low_ms or 0.0, 4), round(result.median_ci_high_ms or 0.0, 4)],
        "latency_runs": result.runs, "latency_threads": result.threads, "executed_precision": result.executed_precision,
    }
