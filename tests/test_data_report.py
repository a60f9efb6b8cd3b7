"""``edgekit data`` on the digits demo: a good calibration set, a one-class set and a 0-255 set for a [0, 1] model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import edgekit
from edgekit.cli import main

pytestmark = pytest.mark.slow


def _run(*args: str):
    return CliRunner().invoke(main, ["data", *args], catch_exceptions=False)


def test_the_demo_calibration_set_is_fit_and_its_coverage_reported(digits_keras_file, digits, tmp_path):
    x_train, x_test, _, _ = digits
    np.save(tmp_path / "calib.npy", x_train[:300])
    np.save(tmp_path / "val.npy", x_test)
    result = _run(str(digits_keras_file), "--calibration", str(tmp_path / "calib.npy"), "--validation", str(tmp_path / "val.npy"),
                  "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["samples"] == 300 and report["inputs"][0]["shape"] == [1, 8, 8, 1]
    assert report["inputs"][0]["maximum"] == pytest.approx(1.0) and report["inputs"][0]["minimum"] == 0.0
    assert report["exact_duplicates"] == 0
    histogram = report["class_histogram"]
    assert len(histogram) == 10 and max(histogram.values()) / 300 < 0.2
    assert report["validation_samples"] == 300 and len(report["coverage"]) >= 8  # one row per Keras layer
    assert all(0.0 <= row["coverage"] <= 1.0 for row in report["coverage"])
    assert {f["code"] for f in report["findings"]} <= {"coverage", "near_duplicates"}


def test_a_one_class_set_is_flagged_with_a_hint(digits_keras_file, digits, tmp_path):
    x_train, _, y_train, _ = digits
    np.save(tmp_path / "threes.npy", x_train[y_train == 3][:100])
    result = _run(str(digits_keras_file), "--calibration", str(tmp_path / "threes.npy"))
    assert result.exit_code == 0, result.output
    assert "of the calibration samples are predicted as class 3" in result.output
    assert "calibrate on samples of every class" in result.output


def test_a_0_255_set_for_a_0_1_model_is_flagged_with_a_hint(digits_keras_file, digits, tmp_path):
    x_train, x_test, _, _ = digits
    np.save(tmp_path / "raw.npy", np.round(x_train[:200] * 255).astype(np.float32))
    np.save(tmp_path / "val.npy", x_test)
    result = _run(str(digits_keras_file), "--calibration", str(tmp_path / "raw.npy"))
    assert result.exit_code == 0, result.output
    assert "ranges over [0, 255] but the model expects about [0, 1] (heuristic" in " ".join(result.output.split())
    assert "x / 255" in result.output
    report = edgekit.data_report(digits_keras_file, tmp_path / "raw.npy", validation_data=tmp_path / "val.npy")
    found = {f.code: f for f in report.warnings}
    assert found["range"].message.endswith("(the validation data's range)")
    # 0-255 calibration ranges are wider than every layer's range on [0, 1] data: nothing is clipped, the
    # damage is resolution, which the range finding names
    assert "coverage" not in found and min(r.coverage for r in report.coverage) == 1.0
    assert max(r.clipped for r in report.coverage) == 0.0


def test_unusable_data_exits_2_with_the_reason(digits_keras_file, tmp_path):
    np.save(tmp_path / "same.npy", np.full((40, 8, 8, 1), 0.5, np.float32))
    result = CliRunner().invoke(main, ["data", str(digits_keras_file), "--calibration", str(tmp_path / "same.npy")])
    assert result.exit_code == 2 and "all 40 usable calibration samples are identical" in result.output
