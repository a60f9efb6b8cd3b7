"""The streaming trace statistics (edgekit.divergence.stats) against the same measures over all samples at once."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.divergence.stats import SAMPLE_CAP, PairStats, RangeStats


def _outlier_ratio(values: np.ndarray) -> float:
    """The definition on every sample held at once (what the trace computed before it streamed)."""
    magnitude = np.abs(values)
    ratios = [magnitude.max() / np.percentile(magnitude, 99)]
    for axis in {1, magnitude.ndim - 1}:
        per_channel = np.moveaxis(magnitude, axis, 0).reshape(magnitude.shape[axis], -1).max(axis=1)
        ratios.append(per_channel.max() / np.median(per_channel))
    return float(max(ratios))


def test_pair_stats_sample_by_sample_equal_the_measures_over_all_samples() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(40, 8, 6)).astype(np.float32)
    ref[3, 2, 1] = 90.0  # an outlier
    act = (ref + rng.normal(0, 0.05, ref.shape)).astype(np.float32)
    stats = PairStats((-1.0, 1.0))
    for i in range(0, 40, 3):  # feeds of 3 samples (the last one shorter)
        stats.add(ref[i:i + 3], act[i:i + 3])
    r, a = ref.reshape(40, -1).astype(np.float64), act.reshape(40, -1).astype(np.float64)
    cosine = np.mean(np.sum(r * a, 1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(a, axis=1)))
    assert stats.cosine() == pytest.approx(cosine, abs=1e-9)
    assert stats.relative_error() == pytest.approx(np.linalg.norm(a - r) / np.linalg.norm(r), rel=1e-9)
    margin = 0.5 * 2.0 / 255.0
    assert stats.saturated_fraction() == pytest.approx(np.mean((ref < -1 - margin) | (ref > 1 + margin)), abs=1e-12)
    assert (stats.reference.low, stats.reference.high) == (float(ref.min()), 90.0)
    assert stats.reference.outlier_ratio() == pytest.approx(_outlier_ratio(ref), rel=1e-6)


def test_range_stats_stay_bounded_and_close_past_the_cap() -> None:
    rng = np.random.default_rng(1)
    stats = RangeStats()
    chunks = [rng.exponential(size=(1, 16, 64, 64)).astype(np.float32) for _ in range(12)]  # 786k values
    for chunk in chunks:
        stats.add(chunk)
    kept = sum(part.size for part in stats._kept)
    assert SAMPLE_CAP // 2 <= kept <= SAMPLE_CAP
    everything = np.concatenate(chunks)
    exact = _outlier_ratio(everything)
    assert stats.outlier_ratio() == pytest.approx(exact, rel=0.02)  # the 99th percentile from a 1/8 sample
    assert stats.count == everything.size and stats.high == float(everything.max())
