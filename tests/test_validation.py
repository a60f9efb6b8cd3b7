"""Parity metrics: what makes an artifact pass or fail, on hand-made outputs with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.options import Tolerances
from edgekit.specs import TensorSpec
from edgekit.validation import compare, match_names, output_metrics

PROB = (TensorSpec(name="prob", shape=(None, 1), dtype="float32"),)


def _feeds(values: np.ndarray, name: str = "prob") -> list[dict[str, np.ndarray]]:
    return [{name: v[None]} for v in values]


def test_a_single_value_output_is_compared_across_samples_not_by_sign():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.05, 0.95, (50, 1)).astype(np.float32)
    flipped = 1.0 - reference  # same signs everywhere: a per-sample cosine would be 1.0 for every sample
    metrics = output_metrics("prob", [r[None] for r in reference], [f[None] for f in flipped], classifier=False)
    assert metrics.cosine < 0.9
    result = compare(_feeds(reference), _feeds(flipped), PROB, Tolerances.default_for("fp32"), classifier=False)
    assert result.status == "failed" and "prob" in result.message


def test_outputs_equal_to_within_rounding_pass_whatever_their_cosine():
    rng = np.random.default_rng(1)
    spec = (TensorSpec(name="heat", shape=(None, 64), dtype="float32"),)
    reference = rng.standard_normal((10, 64)) * 1e-8
    noisy = reference + rng.standard_normal((10, 64)) * 1e-7
    result = compare(_feeds(reference, "heat"), _feeds(noisy, "heat"), spec, Tolerances.default_for("fp32"), classifier=False)
    assert result.cosine < 0.5 and result.max_abs_error < 1e-6 and result.status == "passed"


def test_top1_agreement_gates_classifiers():
    spec = (TensorSpec(name="logits", shape=(None, 10), dtype="float32"),)
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((400, 10))
    actual = reference.copy()
    actual[:40] = actual[:40][:, ::-1]  # 40 of 400 samples answer differently
    result = compare(_feeds(reference, "logits"), _feeds(actual, "logits"), spec,
                     Tolerances(cosine=-1.0, top1_agreement=0.95), classifier=True)
    assert result.top1_agreement == pytest.approx(0.9) and result.status == "failed"
    assert "logits: top1_agreement 0.9 [0.866322, 0.927594] vs >= 0.95: failed" in result.message
    few = compare(_feeds(reference[36:76], "logits"), _feeds(actual[36:76], "logits"), spec,  # 4 of 40 differ
                  Tolerances(cosine=-1.0, top1_agreement=0.95), classifier=True)
    assert few.top1_agreement == pytest.approx(0.9) and few.status == "inconclusive"  # 0.9 on 40: (0.763, 0.972)


def test_outputs_are_matched_by_name_then_shape_then_position():
    source = (TensorSpec(name="boxes", shape=(1, 4), dtype="float32"), TensorSpec(name="scores", shape=(1, 10), dtype="float32"))
    artifact = (TensorSpec(name="StatefulPartitionedCall:1", shape=(1, 10), dtype="float32"),
                TensorSpec(name="StatefulPartitionedCall:0", shape=(1, 4), dtype="float32"))
    assert match_names(source, artifact) == {"boxes": "StatefulPartitionedCall:0", "scores": "StatefulPartitionedCall:1"}
    assert match_names(source, artifact, {"boxes": "StatefulPartitionedCall:1"})["boxes"] == "StatefulPartitionedCall:1"
