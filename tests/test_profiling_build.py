"""Profiling a real build folder (Keras -> TFLite fp32/int8 and ONNX) with accuracy and parity."""
from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.formats.runner import open_runner


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory, digits_keras_file, digits):
    x_train, x_test, _, y_test = digits
    out = tmp_path_factory.mktemp("build")
    edgekit.convert(digits_keras_file, formats=["tflite", "onnx"], precision=["fp32", "int8"],
                    calibration_data=x_train[:200], output_dir=out)
    dataset = out.parent / "digits_test.npz"
    np.savez(dataset, x=x_test, y=y_test.astype(np.int64))
    return out, dataset


@pytest.mark.slow
def test_every_artifact_of_a_build_with_accuracy_and_parity(digits_build, tmp_path):
    folder, dataset = digits_build
    report = edgekit.profile(folder, dataset=dataset, runs=20, min_seconds=0.05, warmup=2, op_profile_runs=3)
    assert len(report.results) == 4 and not report.partial
    tflite_int8 = report.result("tflite", "int8")
    assert tflite_int8.ops == () and "does not expose per-operation times" in tflite_int8.ops_note
    assert report.result("onnx", "int8").ops  # ONNX Runtime's profiler
    for result in report.results:
        assert result.median_ci_low_ms <= result.median_ms <= result.median_ci_high_ms
        assert 0.93 < result.accuracy.accuracy <= 1.0  # the README's table: 96-97% on these 450 digits
        assert result.accuracy.parity.cosine > (0.999 if result.precision == "fp32" else 0.99)
        assert result.accuracy.parity.top1_agreement >= 0.97
    html = report.save_html(tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 4 + 3 and "does not expose per-operation" in html


@pytest.mark.slow
def test_lean_tflite_path_computes_what_run_computes(digits_build, digits):
    folder, _ = digits_build
    build = edgekit.read_manifest(folder)
    path = next(a["path"] for a in build["artifacts"] if a["format"] == "tflite" and a["precision"] == "int8")
    runner = open_runner(path, "tflite", threads=1)
    feed = {runner.inputs[0].name: digits[1][:1]}
    expected = runner.run(feed)
    prepared = runner.prepare(feed)
    runner.run_prepared(prepared)
    raw = runner.interpreter.get_tensor(runner.interpreter.get_output_details()[0]["index"])
    spec = runner.outputs[0]
    if spec.scale is not None and np.issubdtype(raw.dtype, np.integer):
        raw = (raw.astype(np.float32) - spec.zero_point) * spec.scale
    np.testing.assert_allclose(raw, expected[spec.name])
    np.testing.assert_allclose(runner.run(feed)[spec.name], expected[spec.name])  # run() still works afterwards
