"""Verdicts as measurements: intervals with their stated coverage, and the passed/failed/inconclusive rule."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.options import Tolerances
from edgekit.specs import TensorSpec
from edgekit.validation import compare
from edgekit.verdict import judge, mean_interval, proportion_interval, samples_for_proportion

LOGITS = (TensorSpec(name="logits", shape=(None, 7), dtype="float32"),)


def _classifier_outputs(n: int, disagree: int, seed: int = 0) -> tuple[list, list]:
    """``n`` reference logits and an artifact that answers differently on ``disagree`` of them."""
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, 7))
    actual = reference + rng.standard_normal((n, 7)) * 1e-6
    for row in range(disagree):
        top = int(np.argmax(reference[row]))
        actual[row, top] = reference[row].min() - 1.0  # the top class drops to the bottom
    return [{"logits": r[None]} for r in reference], [{"logits": a[None]} for a in actual]


def _verdict(n: int, disagree: int):
    references, actuals = _classifier_outputs(n, disagree)
    return compare(references, actuals, LOGITS, Tolerances(cosine=-1.0, top1_agreement=0.95), classifier=True)


def test_agreement_097_on_64_samples_is_not_passed_and_090_on_fresh_data_fails():
    on_calibration = _verdict(64, 2)  # 62/64 = 0.969
    assert on_calibration.top1_agreement == pytest.approx(62 / 64)
    low, high = on_calibration.top1_interval
    assert low == pytest.approx(0.8916, abs=1e-3) and high == pytest.approx(0.9962, abs=1e-3)
    assert on_calibration.status == "inconclusive"
    assert on_calibration.samples_needed == samples_for_proportion(62 / 64, 0.95, 64)
    assert 300 < on_calibration.samples_needed < 600
    assert "would decide it" in on_calibration.message
    fresh = _verdict(500, 50)  # 0.90 on 500 fresh samples
    assert fresh.top1_agreement == pytest.approx(0.90) and fresh.status == "failed"
    assert fresh.top1_interval[1] < 0.95


def test_a_clearly_good_artifact_on_500_samples_passes():
    result = _verdict(500, 2)  # 0.996
    assert result.status == "passed" and result.top1_interval[0] > 0.985
    check = result.outputs[0].check("top1_agreement")
    assert check.method.startswith("exact binomial") and check.samples == 500


def test_binomial_interval_covers_the_true_value_in_at_least_93_percent_of_1000_trials():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(1000):
        successes = rng.binomial(64, 0.9)
        low, high = proportion_interval(int(successes), 64)
        hits += low <= 0.9 <= high
    assert hits >= 930
    assert hits == 973  # Clopper-Pearson is conservative: above the nominal 95%


def test_bootstrap_interval_covers_the_true_mean_in_at_least_93_percent_of_1000_trials():
    rng = np.random.default_rng(11)
    a, b = 20.0, 2.0  # a skewed, bounded metric like a per-sample cosine
    truth = a / (a + b)
    hits = sum(
        (lambda ci: ci[0] <= truth <= ci[1])(mean_interval(rng.beta(a, b, 200), seed=trial)) for trial in range(1000)
    )
    assert hits >= 930


def test_the_rule_needs_the_whole_interval_on_one_side():
    assert judge(0.96, 0.99, 0.95, True) == "passed"
    assert judge(0.90, 0.94, 0.95, True) == "failed"
    assert judge(0.93, 0.97, 0.95, True) == "inconclusive"
    assert judge(0.01, 0.02, 0.05, False) == "passed" and judge(0.06, 0.07, 0.05, False) == "failed"


def test_an_embedding_is_judged_by_cosine_not_top1():
    rng = np.random.default_rng(3)
    spec = (TensorSpec(name="features", shape=(None, 1280), dtype="float32"),)
    reference = np.abs(rng.standard_normal((40, 1280)))  # pooled ReLU features
    actual = reference + rng.standard_normal((40, 1280)) * 0.08  # cosine ~0.995, argmax often moves
    result = compare([{"features": r[None]} for r in reference], [{"features": a[None]} for a in actual], spec,
                     Tolerances(cosine=0.99, top1_agreement=0.95), classifier=True)  # the source guessed "classifier"
    metrics = result.outputs[0]
    assert metrics.kind == "embedding" and metrics.top1_agreement is None
    assert 0.99 < metrics.cosine < 0.999 and result.status == "passed"
    assert metrics.rule.startswith("embedding: cosine >= 0.99")
    declared = compare([{"features": r[None]} for r in reference], [{"features": a[None]} for a in actual], spec,
                       Tolerances(cosine=0.99, top1_agreement=0.95), classifier=True, kinds={"features": "classifier"})
    assert declared.outputs[0].kind_source == "declared" and declared.top1_agreement < 0.95
    assert declared.status == "failed"


def test_three_regression_scores_get_a_relative_error_check_not_top1():
    rng = np.random.default_rng(4)
    spec = (TensorSpec(name="scores", shape=(None, 3), dtype="float32"),)
    reference = rng.standard_normal((200, 3))
    close = reference + rng.standard_normal((200, 3)) * 0.01
    result = compare([{"scores": r[None]} for r in reference], [{"scores": a[None]} for a in close], spec,
                     Tolerances.default_for("int8"), classifier=True)
    metrics = result.outputs[0]
    assert metrics.kind == "regression" and metrics.top1_agreement is None and result.top1_agreement is None
    assert metrics.relative_error == pytest.approx(0.01, rel=0.2) and result.status == "passed"
    assert metrics.rule == "regression: relative_error <= 0.1 (whole interval)"


def test_softmax_rows_are_a_classifier_whatever_the_source_guessed():
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((100, 3)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    spec = (TensorSpec(name="p", shape=(None, 3), dtype="float32"),)
    result = compare([{"p": r[None]} for r in probs], [{"p": r[None]} for r in probs], spec,
                     Tolerances.default_for("int8"), classifier=False)
    assert result.outputs[0].kind == "classifier" and result.top1_agreement == 1.0


def _artifact(validation):
    from edgekit.specs import Artifact

    return Artifact(format="onnx", precision="int8", route="onnx_onnx", path="m.onnx", files=(), size_bytes=10, sha256="0",
                    inputs=(), outputs=LOGITS, validation=validation, convert_seconds=0.0)


def test_budgets_are_judged_by_their_intervals():
    from edgekit.compat.gate import judge_budgets
    from edgekit.profiles import Budgets
    from edgekit.validation import accuracy_checks

    validation = _verdict(64, 2)
    reference = np.ones(64, bool)
    artifact = np.ones(64, bool)
    artifact[:6] = False  # accuracy 58/64 = 0.906, the reference 1.0
    accuracy, drop = accuracy_checks(reference, artifact)
    validation = validation.model_copy(update={"accuracy": accuracy.value, "reference_accuracy": 1.0,
                                               "accuracy_check": accuracy, "accuracy_drop_check": drop})
    checks = {b.name: b for b in judge_budgets(_artifact(validation), Budgets(
        min_top1_agreement=0.85, min_cosine=0.5, min_accuracy=0.8, max_accuracy_drop=0.02, max_size_bytes=100))}
    assert checks["min_top1_agreement"].status == "passed" and checks["min_top1_agreement"].interval[0] > 0.89  # [0.892, 0.996]
    assert checks["min_accuracy"].status == "passed"  # [0.807, 0.965] clears 0.8
    assert checks["max_accuracy_drop"].status == "failed"  # a paired drop of 6/64, interval [0.03, 0.16]
    assert checks["max_accuracy_drop"].interval[0] > 0.02
    strict = {b.name: b for b in judge_budgets(_artifact(validation), Budgets(min_accuracy=0.9, min_top1_agreement=0.95))}
    assert strict["min_accuracy"].status == "inconclusive" and strict["min_accuracy"].samples_needed > 1000
    assert strict["min_top1_agreement"].status == "inconclusive" and "would decide it" in strict["min_top1_agreement"].message
    assert not _artifact(validation).passed and _artifact(validation).verdict == "inconclusive"


def test_the_profiling_report_shows_accuracy_with_its_interval():
    from edgekit.profiling.html import accuracy_text
    from edgekit.profiling.report import AccuracyResult

    text = accuracy_text(AccuracyResult(dataset="d.npz", samples=200, accuracy=0.97, output="p"))
    assert text == "97.00% [93.6%–98.9%] n=200"


def test_retrieval_agreement_when_asked_and_detection_heads_by_their_own_tolerance():
    rng = np.random.default_rng(8)
    spec = (TensorSpec(name="emb", shape=(None, 64), dtype="float32"),)
    reference = rng.standard_normal((120, 64))
    shuffled = reference + rng.standard_normal((120, 64)) * 2.0  # neighbours change
    asked = Tolerances(cosine=0.0, retrieval_agreement=0.9)
    result = compare([{"emb": r[None]} for r in reference], [{"emb": a[None]} for a in shuffled], spec, asked, classifier=False)
    retrieval = result.outputs[0].check("retrieval_agreement")
    assert retrieval.value < 0.5 and retrieval.status == "failed" and result.status == "failed"
    boxes = (TensorSpec(name="boxes", shape=(None, 100, 4), dtype="float32"),)
    reference = rng.uniform(0, 1, (50, 100, 4))
    noisy = reference + rng.standard_normal((50, 100, 4)) * 0.05  # cosine ~0.996
    result = compare([{"boxes": r[None]} for r in reference], [{"boxes": a[None]} for a in noisy], boxes,
                     Tolerances.default_for("int8"), classifier=False)
    assert result.outputs[0].kind == "detection" and result.outputs[0].rule == "detection: cosine >= 0.95 (whole interval)"
    assert result.status == "passed"


def test_an_artifact_that_outputs_zeros_fails_with_a_tight_interval():
    """A cosine over all samples (outputs of a few values) is 0, not 1, for resamples where the artifact gives only
    zeros: an int8 artifact that collapsed to zero on most inputs must fail, not stay inconclusive."""
    from edgekit.validation import output_metrics

    rng = np.random.default_rng(3)
    reference = [rng.normal(size=(1, 10)) for _ in range(64)]
    actual = [np.zeros((1, 10)) if i % 8 else r * 0.1 + rng.normal(size=(1, 10)) for i, r in enumerate(reference)]
    result = output_metrics("logits", reference, actual, kind="tensor", tolerances=Tolerances(cosine=0.999))
    cosine = result.checks[0]
    assert cosine.metric == "cosine" and cosine.high < 0.5 and cosine.status == "failed"
