"""The measurement protocol and its statistics (see the README's "Profiling" section).

1. load the model (timed), 2. first inference (timed on its own), 3. ``warmup_runs`` untimed runs,
4. timed runs, one ``perf_counter_ns`` pair around each lean call, until both ``min_runs`` and
``min_seconds`` are reached (or ``max_runs`` / the deadline stops it early).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """How one artifact is measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warmup_runs: int = Field(default=10, ge=0, le=10_000)
    min_runs: int = Field(default=100, ge=1, le=1_000_000)
    min_seconds: float = Field(default=2.0, ge=0, le=3600)
    max_runs: int = Field(default=100_000, ge=1, le=1_000_000)
    threads: int | None = Field(default=1, ge=1, le=1024)
    affinity: tuple[int, ...] | None = None  # CPU cores the measuring process is pinned to
    op_profile_runs: int = Field(default=20, ge=0, le=10_000)  # 0: no per-op profile
    timeout_seconds: float = Field(default=600.0, gt=0, le=86_400)  # for one artifact, load to last run


class LatencyStats(BaseModel):
    """Statistics of the timed runs, in milliseconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runs: int
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float
    median_ci_low_ms: float
    median_ci_high_ms: float
    median_ci_confidence: float  # the coverage the order statistics reach (>= 0.95 from 6 runs on)


class Timing(BaseModel):
    """What the loop measured: raw latencies and the phases before them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_inference_ms: float
    warmup_runs: int
    latencies_ms: tuple[float, ...]
    measured_seconds: float
    stopped_by: str  # "target" (min runs and min time reached), "max_runs" or "deadline"


def median_ci(sorted_ms: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The number of samples below the true median is Binomial(n, 1/2); the interval [x_(j), x_(n+1-j)]
    (1-based) covers it with probability 1 - 2 * P(B <= j - 1). The largest j reaching ``confidence``
    is used; with too few samples the interval is [min, max] with the coverage it really has.
    """
    n = len(sorted_ms)
    if n == 0:
        raise ValueError("no samples")
    log_half_n = n * math.log(0.5)

    def pmf(k: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)

    cdf = pmf(0)  # P(B <= j - 1) for the current j
    j, coverage = 1, 1.0 - 2.0 * cdf
    for candidate in range(2, (n + 1) // 2 + 1):
        cdf += pmf(candidate - 1)
        if 1.0 - 2.0 * cdf < confidence:
            break
        j, coverage = candidate, 1.0 - 2.0 * cdf
    return float(sorted_ms[j - 1]), float(sorted_ms[n - j]), max(0.0, coverage)


def summarize(latencies_ms: list[float] | tuple[float, ...]) -> LatencyStats:
    """min, mean, median (p50), p90, p99 (linear interpolation), max, sample std and the median's 95% CI."""
    values = np.sort(np.asarray(latencies_ms, dtype=np.float64))
    low, high, coverage = median_ci(values)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencyStats(
        runs=len(values), min_ms=float(values[0]), mean_ms=float(values.mean()), median_ms=float(p50),
        p90_ms=float(p90), p99_ms=float(p99), max_ms=float(values[-1]),
        std_ms=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        median_ci_low_ms=low, median_ci_high_ms=high, median_ci_confidence=coverage,
    )


def measure(call: Callable[[], object], settings: Settings, deadline: float,
            progress: Callable[[float, str], None] | None = None) -> Timing:
    """Run ``call`` as the protocol says; ``deadline`` is a ``time.monotonic()`` value that stops the loop."""
    clock = time.perf_counter_ns
    start = clock()
    call()
    first_ms = (clock() - start) / 1e6
    for _ in range(settings.warmup_runs):
        call()
    latencies: list[float] = []
    append = latencies.append
    min_ns = settings.min_seconds * 1e9
    began = clock()
    next_report = began
    stopped_by = "target"
    while True:
        t0 = clock()
        call()
        t1 = clock()
        append((t1 - t0) / 1e6)
        count = len(latencies)
        if count >= settings.min_runs and t1 - began >= min_ns:
            break
        if count >= settings.max_runs:
            stopped_by = "max_runs"
            break
        if t1 >= next_report:  # progress and deadline checks at most 4 times a second
            next_report = t1 + 250_000_000
            if time.monotonic() >= deadline:
                stopped_by = "deadline"
                break
            if progress is not None:
                done = min(count / settings.min_runs, (t1 - began) / min_ns if min_ns else 1.0)
                progress(min(done, 1.0), f"{count} timed runs")
    return Timing(first_inference_ms=first_ms, warmup_runs=settings.warmup_runs, latencies_ms=tuple(latencies),
                  measured_seconds=(clock() - began) / 1e9, stopped_by=stopped_by)


def pin_cores(cores: tuple[int, ...] | None, machine: str) -> tuple[int, ...] | None:
    """Pin this process to ``cores`` (when given) and return the cores it runs on (None where the OS cannot
    say); a refusal names the cores ``machine`` ("this machine", "the device") has."""
    from edgekit.errors import ProfilingError

    if not hasattr(os, "sched_setaffinity"):
        return None
    if cores:
        try:
            os.sched_setaffinity(0, cores)
        except (OSError, ValueError) as exc:
            raise ProfilingError(f"cannot pin the measuring process to cores {list(cores)}: {exc}",
                                 f"{machine} has cores 0-{(os.cpu_count() or 1) - 1}") from None
    return tuple(sorted(os.sched_getaffinity(0)))
