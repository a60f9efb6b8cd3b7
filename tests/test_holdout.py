"""Calibration and validation data stay disjoint: the split, its record, and when it refuses."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import holdout
from edgekit.data_checks import class_findings, summarize
from edgekit.errors import DataError
from edgekit.specs import TensorSpec

INPUT = (TensorSpec(name="x", shape=(None, 4), dtype="float32"),)


def _feeds(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 4)).astype(np.float32)} for _ in range(n)]


def test_the_split_is_disjoint_seeded_and_recorded():
    feeds = _feeds(100)
    held = holdout.split(feeds, 200)
    record = held.record
    cal, val = record["calibration"]["indices"], record["validation"]["indices"]
    assert len(val) == 30 and len(cal) == 70 and not set(cal) & set(val) and sorted(cal + val) == list(range(100))
    assert held.origin == "held_out" and record["method"] == "random (seed 0)"
    assert record["validation"]["sha256"] == holdout.feeds_digest([feeds[i] for i in val])
    assert record["calibration"]["sha256"] == holdout.feeds_digest(held.calibration)
    assert holdout.split(feeds, 200).record == record  # seeded
    assert holdout.split(feeds, 200, seed=1).record["validation"]["indices"] != val


def test_stratified_split_keeps_each_class_share():
    classes = [0] * 60 + [1] * 30 + [2] * 10
    held = holdout.split(_feeds(100), 200, classes=classes)
    assert held.record["classes"]["validation"] == {"0": 18, "1": 9, "2": 3}
    assert held.record["classes"]["calibration"] == {"0": 42, "1": 21, "2": 7}
    assert held.record["method"].startswith("stratified")


def test_a_sequence_holds_out_its_tail():
    held = holdout.split(_feeds(40), 200, sequence=True)
    assert held.record["validation"]["indices"] == list(range(24, 40))  # 16: the minimum validation part
    assert held.record["calibration"]["indices"] == list(range(24))


def test_too_few_samples_to_split_say_how_many_are_needed():
    with pytest.raises(DataError) as caught:
        holdout.split(_feeds(20), 200)
    assert "20 calibration samples are too few" in caught.value.message and "at least 32" in caught.value.message
    assert "validate_on_calibration=True" in caught.value.hint and "--validation" in caught.value.hint


def test_validating_on_calibration_only_when_asked_and_it_is_recorded():
    feeds = _feeds(20)
    asked = holdout.choose(None, feeds, INPUT, 200, calibrates=True, sequence=False, on_calibration=True)
    assert asked.on_calibration and asked.origin == "calibration" and asked.validation == feeds
    not_calibrating = holdout.choose(None, feeds, INPUT, 200, calibrates=False, sequence=False)
    assert not not_calibrating.on_calibration and "no route calibrates" in not_calibrating.record["method"]
    split = holdout.choose(None, _feeds(64), INPUT, 200, calibrates=True, sequence=False, classes=lambda f: None)
    assert split.origin == "held_out" and len(split.validation) == 19 and len(split.calibration) == 45


def test_data_summary_flags_duplicates_nan_and_raw_pixels():
    rng = np.random.default_rng(0)
    images = [{"x": np.round(rng.uniform(0, 255, (1, 4))).astype(np.float32)} for _ in range(40)]
    images[5] = {"x": images[3]["x"].copy()}
    images[7] = {"x": np.full((1, 4), np.nan, dtype=np.float32)}
    report = summarize(images)
    codes = {f.code for f in report.warnings}
    assert {"duplicates", "non_finite", "range"} <= codes
    assert report.exact_duplicates == 1 and report.inputs[0].non_finite_samples == 1
    assert report.inputs[0].expected_range == (0.0, 1.0) and report.inputs[0].expected_from.startswith("heuristic")
    range_finding = next(f for f in report.warnings if f.code == "range")
    assert "x / 255" in range_finding.hint


def test_unusable_data_is_a_clear_error():
    with pytest.raises(DataError, match="are identical"):
        summarize([{"x": np.ones((1, 4), np.float32)} for _ in range(10)])
    with pytest.raises(DataError, match="NaN or Inf"):
        summarize([{"x": np.full((1, 4), np.inf, np.float32)} for _ in range(10)])


def test_a_one_class_calibration_set_is_flagged():
    findings = class_findings({"3": 95, "1": 5})
    assert findings and findings[0].code == "one_class" and "95%" in findings[0].message
    assert class_findings({"3": 80, "1": 20}) == []


def test_a_model_that_rescales_its_input_expects_raw_pixels(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    import edgekit

    nodes = [helper.make_node("Div", ["x", "scale"], ["scaled"]), helper.make_node("Relu", ["scaled"], ["y"])]
    graph = helper.make_graph(nodes, "rescaling", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
                              [numpy_helper.from_array(np.array(255.0, np.float32), "scale")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    raw = np.round(rng.uniform(0, 255, (64, 4))).astype(np.float32)
    report = edgekit.data_report(model, raw)
    assert report.inputs[0].expected_range == (0.0, 255.0)
    assert report.inputs[0].expected_from == "the model's first layer rescales (Div 'scaled' by 255)"
    assert "range" not in {f.code for f in report.warnings}
    scaled = edgekit.data_report(model, raw / 255.0)  # [0, 1] data for a model that divides by 255 itself
    assert "range" in {f.code for f in scaled.warnings}
