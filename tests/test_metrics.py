"""One metrics module: the numbers are those of the definitions it replaced (validation's, the trace's, profiling's)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import metrics
from edgekit.validation import output_metrics

RNG = np.random.default_rng(0)
REF = RNG.normal(size=(32, 20)).astype(np.float32)
ACT = (REF + RNG.normal(scale=0.3, size=REF.shape)).astype(np.float32)
LABELS = RNG.integers(0, 20, size=32)


def _old_validation_cosine(a: np.ndarray, b: np.ndarray) -> float:  # edgekit.validation._cosine before
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return 1.0 if not np.any(a) and not np.any(b) else 0.0
    return float(np.dot(a, b) / norm)


def _old_trace_cosine(reference: np.ndarray, actual: np.ndarray) -> float:  # divergence.trace.cosine_per_sample before
    r = reference.reshape(reference.shape[0], -1).astype(np.float64)
    a = actual.reshape(actual.shape[0], -1).astype(np.float64)
    dot = np.sum(r * a, axis=1)
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(a, axis=1)
    both_zero = (np.linalg.norm(r, axis=1) == 0) & (np.linalg.norm(a, axis=1) == 0)
    cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    return float(np.clip(np.mean(cos), -1.0, 1.0))


def test_cosine_matches_the_two_definitions_it_replaced():
    flat_r, flat_a = REF.astype(np.float64).ravel(), ACT.astype(np.float64).ravel()
    assert metrics.cosine(REF, ACT) == pytest.approx(_old_validation_cosine(flat_r, flat_a), abs=1e-15)
    assert metrics.mean_cosine(REF, ACT) == pytest.approx(_old_trace_cosine(REF, ACT), abs=1e-12)
    assert 0.9 < metrics.mean_cosine(REF, ACT) < 0.99  # noise of 0.3 on unit normals: about 0.95
    validation = output_metrics("y", list(REF), list(ACT), classifier=True)
    assert validation.cosine == metrics.mean_cosine(REF, ACT)


def test_zero_samples_agree_only_with_zero_samples():
    zeros = np.zeros((2, 4))
    assert metrics.cosine(zeros, zeros) == 1.0 and metrics.cosine(zeros, np.ones((2, 4))) == 0.0
    mixed = np.array([[0.0, 0.0], [1.0, 2.0]])
    assert metrics.mean_cosine(mixed, mixed) == pytest.approx(_old_trace_cosine(mixed, mixed), abs=1e-15) == 1.0
    assert metrics.cosine(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == -1.0


def test_errors_and_top1():
    assert metrics.max_abs_error(REF, ACT) == pytest.approx(float(np.abs(REF - ACT).max()))
    assert metrics.mean_abs_error(list(REF), list(ACT)) == pytest.approx(float(np.abs(REF.astype(np.float64) - ACT).mean()))
    assert metrics.max_abs_error([], []) == 0.0
    agreement = float(np.mean(REF.argmax(1) == ACT.argmax(1)))
    assert metrics.top1_agreement(REF, ACT) == agreement == metrics.top1_agreement(list(REF), list(ACT))
    assert 0.5 < agreement < 1.0


def test_top1_accuracy_is_the_same_for_every_caller_shape():
    expected = float(np.mean(REF.argmax(1) == LABELS))
    assert metrics.top1_accuracy(REF, LABELS) == expected  # profiling: (samples, classes)
    assert metrics.top1_accuracy([row[None] for row in REF], LABELS) == expected  # validation: one (1, classes) per feed
    assert metrics.top1_accuracy(REF, LABELS.reshape(-1, 1)) == expected  # labels as a column
    assert metrics.top1_accuracy(REF[:10], LABELS) == float(np.mean(REF[:10].argmax(1) == LABELS[:10]))
    assert list(metrics.predictions(np.eye(3))) == [0, 1, 2]
