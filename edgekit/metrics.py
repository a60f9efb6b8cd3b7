"""The one set of parity and accuracy metrics: validation, ``edgekit.debug``, profiling and the tests use these.

Every function takes NumPy arrays (or sequences of per-sample arrays) and computes in float64.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = np.ndarray | Sequence[np.ndarray]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two arrays taken as flat vectors, in [-1, 1]; two all-zero arrays agree (1.0),
    one all-zero array against another array does not (0.0)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return 1.0 if not np.any(a) and not np.any(b) else 0.0
    return float(np.clip(np.dot(a, b) / norm, -1.0, 1.0))


def mean_cosine(reference: ArrayLike, actual: ArrayLike) -> float:
    """The mean over samples (the first axis, or the items of a sequence) of each sample's ``cosine``."""
    return float(np.mean([cosine(r, a) for r, a in zip(reference, actual, strict=True)]))


def max_abs_error(reference: ArrayLike, actual: ArrayLike) -> float:
    """The largest absolute difference over all values (0.0 for no values)."""
    diffs = _abs_diffs(reference, actual)
    return float(diffs.max()) if diffs.size else 0.0


def mean_abs_error(reference: ArrayLike, actual: ArrayLike) -> float:
    """The mean absolute difference over all values (0.0 for no values)."""
    diffs = _abs_diffs(reference, actual)
    return float(diffs.mean()) if diffs.size else 0.0


def predictions(outputs: ArrayLike) -> np.ndarray:
    """The predicted class of each sample: the index of the largest of its values (a sample's output flattened)."""
    return np.array([int(np.argmax(np.asarray(sample).reshape(-1))) for sample in outputs], dtype=np.int64)


def top1_accuracy(outputs: ArrayLike, labels: np.ndarray) -> float:
    """The share of samples whose predicted class is its label (``labels``: one class index per sample)."""
    predicted = predictions(outputs)
    labels = np.asarray(labels).reshape(-1)[: len(predicted)]
    return float(np.mean(predicted == labels))


def top1_agreement(reference: ArrayLike, actual: ArrayLike) -> float:
    """The share of rows (the last axis holds the classes) where both arrays pick the same class."""
    return float(np.mean(top1_matches(reference, actual)))


def top1_matches(reference: ArrayLike, actual: ArrayLike) -> np.ndarray:
    """Per row (the last axis holds the classes): do both arrays pick the same class?"""
    return np.argmax(_rows(reference), axis=-1) == np.argmax(_rows(actual), axis=-1)


def _rows(values: ArrayLike) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.reshape(-1, values.shape[-1])
    return np.concatenate([np.reshape(v, (-1, np.shape(v)[-1])) for v in values])


def _abs_diffs(reference: ArrayLike, actual: ArrayLike) -> np.ndarray:
    if isinstance(reference, np.ndarray) and isinstance(actual, np.ndarray):
        return np.abs(reference.astype(np.float64) - actual.astype(np.float64)).ravel()
    pairs = [np.abs(np.asarray(r, np.float64).ravel() - np.asarray(a, np.float64).ravel()) for r, a in zip(reference, actual)]
    return np.concatenate(pairs) if pairs else np.zeros(0)
