"""Statistics behind a verdict: confidence intervals and the rule that turns an interval into a status.

* Proportions (top-1 agreement, accuracy, retrieval agreement): the exact Clopper–Pearson interval
  (``scipy.stats.binomtest(...).proportion_ci(method="exact")``), conservative by construction.
* Means over samples (cosine, errors) and statistics of resampled sets (a cosine taken over all samples,
  a paired accuracy drop): a seeded percentile bootstrap over the validation samples.
* The rule: **passed** when the whole interval is on the right side of the threshold, **failed** when the
  whole interval is on the wrong side, **inconclusive** otherwise; an inconclusive check says how many
  samples would decide it if the observed value held.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np

from edgekit.specs import Check

Status = Literal["passed", "failed", "inconclusive"]
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000
SEED = 0
#: beyond this many samples edgekit stops estimating how many would decide a check
MAX_SAMPLES_NEEDED = 10_000_000


def proportion_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) interval of a binomial proportion."""
    from scipy.stats import binomtest

    if trials <= 0:
        return 0.0, 1.0
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray], n: int, *, confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``n`` samples.

    ``statistic`` takes an index matrix of shape (resamples, n) (rows are resampled sample sets) and
    returns one value per row, so that every resample is computed in one vectorised call.
    """
    if n <= 1:
        value = float(statistic(np.zeros((1, max(n, 1)), dtype=np.int64))[0]) if n == 1 else math.nan
        return value, value
    rng = np.random.default_rng(seed)
    values = np.asarray(statistic(rng.integers(0, n, size=(resamples, n))), dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def mean_interval(values: np.ndarray, **kwargs) -> tuple[float, float]:
    """Bootstrap interval of the mean of per-sample ``values``."""
    values = np.asarray(values, dtype=np.float64)
    return bootstrap_interval(lambda idx: values[idx].mean(axis=1), len(values), **kwargs)


def judge(low: float, high: float, threshold: float, larger_is_better: bool) -> Status:
    """The verdict of an interval against a threshold (see the module docstring)."""
    good_low, good_high = (low, high) if larger_is_better else (-high, -low)
    limit = threshold if larger_is_better else -threshold
    if good_low >= limit:
        return "passed"
    if good_high < limit:
        return "failed"
    return "inconclusive"


def samples_for_proportion(observed: float, threshold: float, current: int, confidence: float = CONFIDENCE) -> int | None:
    """Smallest sample count at which a proportion of ``observed`` has an exact interval that excludes
    ``threshold`` (None when the observed value equals the threshold, or it needs more than a huge count)."""
    if abs(observed - threshold) < 1e-12:
        return None

    def decided(n: int) -> bool:
        low, high = proportion_interval(round(observed * n), n, confidence)
        return low >= threshold if observed > threshold else high < threshold

    low_n, high_n = max(current, 1), max(current, 1)
    while not decided(high_n):
        low_n, high_n = high_n, high_n * 2
        if high_n > MAX_SAMPLES_NEEDED:
            return None
    while low_n < high_n:  # the interval narrows with n: bisect for the first n that decides
        middle = (low_n + high_n) // 2
        low_n, high_n = (low_n, middle) if decided(middle) else (middle + 1, high_n)
    return high_n


def samples_for_mean(observed: float, low: float, high: float, threshold: float, current: int) -> int | None:
    """Sample count at which a bootstrap interval as wide as (``low``, ``high``) at ``current`` samples,
    shrinking as 1/sqrt(n), would exclude ``threshold``."""
    gap = abs(observed - threshold)
    half = max(observed - low, high - observed)
    if gap < 1e-12 or current <= 0:
        return None
    needed = math.ceil(current * (half / gap) ** 2) + 1
    return needed if needed <= MAX_SAMPLES_NEEDED else None


def proportion_check(metric: str, successes: int, trials: int, threshold: float | None,
                     confidence: float = CONFIDENCE) -> Check:
    """A larger-is-better proportion (agreement, accuracy) judged on its exact interval."""
    value = successes / trials if trials else math.nan
    low, high = proportion_interval(successes, trials, confidence)
    return _check(metric, value, (low, high), threshold, True, trials, "exact binomial (Clopper-Pearson)",
                  lambda: samples_for_proportion(value, threshold, trials, confidence))


def mean_check(metric: str, value: float, interval: tuple[float, float], threshold: float | None,
               larger_is_better: bool, samples: int) -> Check:
    """A statistic with a bootstrap interval judged against ``threshold``."""
    low, high = interval
    return _check(metric, value, interval, threshold, larger_is_better, samples, "bootstrap (percentile)",
                  lambda: samples_for_mean(value, low, high, threshold, samples))


def _check(metric: str, value: float, interval: tuple[float, float], threshold: float | None, larger: bool,
           samples: int, method: str, needed: Callable[[], int | None]) -> Check:
    low, high = interval
    if threshold is None:
        return Check(metric=metric, value=value, low=low, high=high, samples=samples, method=method, status="measured")
    status = judge(low, high, threshold, larger)
    return Check(
        metric=metric, value=value, low=low, high=high, samples=samples, method=method, threshold=threshold,
        larger_is_better=larger, status=status, samples_needed=needed() if status == "inconclusive" else None,
    )


def worst(statuses: list[str]) -> Status:
    """failed over inconclusive over passed (statuses of unjudged measurements are ignored)."""
    if "failed" in statuses:
        return "failed"
    return "inconclusive" if "inconclusive" in statuses else "passed"
