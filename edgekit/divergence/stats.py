"""Per-layer statistics accumulated one sample at a time, so a trace holds one sample's tensors at most.

:class:`PairStats` compares a reference tensor with the artifact's (sums for the per-sample cosine and the
relative error, the reference's range, its saturated share under the artifact's quantization), and
:class:`RangeStats` describes one tensor's values (range, peak, per-channel peaks and a bounded sample of
|x| for the 99th percentile). Up to :data:`SAMPLE_CAP` values per tensor the percentile is exact; past it
the sample is thinned uniformly at random (a fixed seed), so it stays bounded.
"""
from __future__ import annotations

import numpy as np

SAMPLE_CAP = 1 << 17  # |x| values kept per tensor for the 99th percentile (512 KiB of float32)


def rows(array: np.ndarray) -> np.ndarray:
    """``array`` as float64 rows, one per sample along the first axis (a scalar is one row of one value)."""
    a = np.asarray(array, dtype=np.float64)
    return a.reshape(1, 1) if a.ndim == 0 else a.reshape(a.shape[0], -1)


def row_cosines(reference: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Cosine between each row of ``reference`` and of ``actual`` (two zero rows agree)."""
    dot = np.sum(reference * actual, axis=1)
    ref_norm, act_norm = np.linalg.norm(reference, axis=1), np.linalg.norm(actual, axis=1)
    norms = ref_norm * act_norm
    both_zero = (ref_norm == 0) & (act_norm == 0)
    return np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))


class RangeStats:
    """Range, peaks and a bounded |x| sample of one tensor over the samples seen so far."""

    def __init__(self, seed: int = 0) -> None:
        self.low, self.high = np.inf, -np.inf
        self.count = 0
        self._channels: dict[int, np.ndarray | None] = {}  # axis -> running per-channel max |x|
        self._kept: list[np.ndarray] = []
        self._kept_size = 0
        self._fraction = 1.0  # share of the values kept in the |x| sample
        self._rng = np.random.default_rng(seed)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        if not values.size:
            return
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
        self.count += values.size
        magnitude = np.abs(values)
        for axis in {1, magnitude.ndim - 1} if magnitude.ndim >= 2 else ():
            self._add_channels(axis, np.moveaxis(magnitude, axis, 0).reshape(magnitude.shape[axis], -1).max(axis=1))
        self._keep(magnitude.reshape(-1))

    def _add_channels(self, axis: int, peaks: np.ndarray) -> None:
        if axis not in self._channels:
            self._channels[axis] = peaks
            return
        old = self._channels[axis]
        self._channels[axis] = None if old is None or old.shape != peaks.shape else np.maximum(old, peaks)

    def _keep(self, magnitude: np.ndarray) -> None:
        if self._fraction < 1.0:
            magnitude = magnitude[self._rng.random(magnitude.size) < self._fraction]
        self._kept.append(magnitude)
        self._kept_size += magnitude.size
        while self._kept_size > SAMPLE_CAP:
            self._fraction /= 2
            self._kept = [part[self._rng.random(part.size) < 0.5] for part in self._kept]
            self._kept_size = sum(part.size for part in self._kept)

    def outlier_ratio(self) -> float:
        """The larger of max |x| / 99th percentile of |x| and, per channel (axis 1 and the last axis), the
        largest channel's max |x| over the median channel's."""
        if not self.count:
            return 1.0
        peak = max(abs(self.low), abs(self.high))
        kept = np.concatenate(self._kept) if self._kept else np.zeros(1, np.float32)
        ratios = [_ratio(peak, float(np.percentile(kept, 99)))]
        for per_channel in self._channels.values():
            if per_channel is not None and per_channel.size >= 4:
                ratios.append(_ratio(float(per_channel.max()), float(np.median(per_channel))))
        return max(ratios)


class PairStats:
    """The artifact's tensor against the reference's for one layer, summed over samples."""

    def __init__(self, representable: tuple[float, float] | None) -> None:
        self.cosine_sum = 0.0
        self.rows = 0
        self.diff_sq = 0.0
        self.ref_sq = 0.0
        self.reference = RangeStats()
        self.saturated = 0
        self._bounds = None
        if representable is not None:
            low, high = representable
            margin = 0.5 * (high - low) / 255.0
            self._bounds = (low - margin, high + margin)

    def add(self, reference: np.ndarray, actual: np.ndarray) -> None:
        ref, act = rows(reference), rows(actual)
        self.cosine_sum += float(np.sum(row_cosines(ref, act)))
        self.rows += ref.shape[0]
        self.diff_sq += float(np.sum((act - ref) ** 2))
        self.ref_sq += float(np.sum(ref ** 2))
        self.reference.add(reference)
        if self._bounds is not None:
            values = np.asarray(reference, dtype=np.float32)
            self.saturated += int(np.count_nonzero((values < self._bounds[0]) | (values > self._bounds[1])))

    def cosine(self) -> float:
        return float(np.clip(self.cosine_sum / max(self.rows, 1), -1.0, 1.0))

    def relative_error(self) -> float:
        return float(np.sqrt(self.diff_sq) / max(np.sqrt(self.ref_sq), 1e-12))

    def saturated_fraction(self) -> float | None:
        return None if self._bounds is None else self.saturated / max(self.reference.count, 1)


def _ratio(peak: float, typical: float) -> float:
    return min(peak / typical, 1e6) if typical > 0 else (1.0 if peak == 0 else 1e6)
