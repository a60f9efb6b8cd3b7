"""edgekit.debug on real artifacts: an ONNX model with a known outlier layer (ONNX Runtime and OpenVINO)
and a trained Keras CNN with the same culprit in all three formats (slow)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from debug_models import outlier_classifier, outlier_onnx, residual_onnx, sigmoid_head_onnx

import edgekit
from edgekit.divergence import DivergenceReport
from edgekit.divergence.html import render
from edgekit.errors import Cancelled, DataError, EdgekitError, ModelFileError

pytestmark = pytest.mark.slow  # every test here converts real models first
FORMAT_FILES = {"onnx": "model_int8.onnx", "openvino": "model_int8.xml", "tflite": "model_int8.tflite"}


@pytest.fixture(scope="module")
def mlp_data() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(164, 1, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def onnx_build(tmp_path_factory: pytest.TempPathFactory, mlp_data: np.ndarray) -> Path:
    out = tmp_path_factory.mktemp("onnx-build")
    edgekit.convert(outlier_onnx(), formats=["onnx", "openvino"], precision=["fp32", "int8"],
                    calibration_data=mlp_data[:100], validation_data=mlp_data[100:], output_dir=out, rescue=False)
    return out


def _check_consistent(report: DivergenceReport) -> None:
    for layer in report.layers:
        assert layer.added_error == pytest.approx(max(0.0, layer.error - layer.inherited_error), abs=1e-9)
        assert layer.cosine == pytest.approx(1.0 - layer.error)


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_trace_names_the_outlier_layer_first(onnx_build: Path, mlp_data: np.ndarray, fmt: str) -> None:
    report = edgekit.debug(onnx_build / FORMAT_FILES[fmt], mlp_data[100:], calibration=mlp_data[:100])
    assert report.format == fmt and report.precision == "int8" and report.samples == 64
    assert report.output_cosine is not None and report.output_cosine < 0.5  # the outlier ruins plain int8
    culprit = report.culprits[0]
    assert culprit.name.startswith("outlier") and "outlier activations" in culprit.reasons[0]
    assert culprit.share > 0.5
    assert any(name in ("head", "logits") for name in culprit.keep_float)  # the layer reading the outliers
    first = report.layers[0]
    assert first.cosine > 0.999 and first.inherited_error == 0.0
    outlier = next(layer for layer in report.layers if layer.name == culprit.name)
    assert outlier.outlier_ratio > 100 and outlier.scale is not None and outlier.scale > 1.0
    assert outlier.calibration_range is not None and outlier.calibration_range[1] > 500
    _check_consistent(report)
    again = DivergenceReport.model_validate_json(report.model_dump_json())
    assert again.schema_version == 1 and again.culprit_names() == report.culprit_names()


def test_fp32_reference_of_the_build_is_found_and_given_one_agrees(onnx_build: Path, mlp_data: np.ndarray) -> None:
    artifact = onnx_build / "model_int8.onnx"
    found = edgekit.debug(artifact, mlp_data[100:120])
    given = edgekit.debug(artifact, mlp_data[100:120], reference=onnx_build / "model_fp32.onnx")
    assert Path(found.reference).name == "model_fp32.onnx"
    assert found.output_cosine == pytest.approx(given.output_cosine)
    assert "no calibration data given" in found.notes[-1]


def test_progress_is_typed_and_reaches_every_stage(onnx_build: Path, mlp_data: np.ndarray) -> None:
    events: list[edgekit.ProgressEvent] = []
    edgekit.debug(onnx_build / "model_int8.onnx", mlp_data[100:110], calibration=mlp_data[:5], progress=events.append)
    assert all(isinstance(e, edgekit.ProgressEvent) for e in events)
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages == ["debug:reference", "debug:artifact", "debug:calibration", "debug:compare"]
    traced = [e for e in events if e.stage == "debug:artifact"]
    assert len(traced) == 11 and traced[-1].fraction == 1.0 and traced[-1].message.endswith("(10/10 samples)")


def test_cancel_mid_debug_stops_at_the_next_sample(onnx_build: Path, mlp_data: np.ndarray) -> None:
    cancel = threading.Event()
    seen: list[edgekit.ProgressEvent] = []

    def on_event(event: edgekit.ProgressEvent) -> None:
        seen.append(event)
        if event.stage == "debug:artifact" and event.fraction >= 0.25:  # a quarter of the artifact's samples traced
            cancel.set()

    with pytest.raises(Cancelled) as info:
        edgekit.debug(onnx_build / "model_int8.onnx", mlp_data[100:164], progress=on_event, cancel=cancel)
    assert info.value.message == "edgekit.debug was cancelled"
    assert seen[-1].stage == "debug:artifact" and seen[-1].fraction == 16 / 64  # no sample traced after the cancel


def test_no_float_reference_is_a_clear_error(onnx_build: Path, mlp_data: np.ndarray, tmp_path: Path) -> None:
    lone = tmp_path / "model_int8.onnx"
    shutil.copy(onnx_build / "model_int8.onnx", lone)
    with pytest.raises(EdgekitError, match="no float reference for model_int8.onnx") as info:
        edgekit.debug(lone, mlp_data[:4])
    assert "--reference" in info.value.hint


def test_reference_of_another_format_is_refused(onnx_build: Path, mlp_data: np.ndarray) -> None:
    with pytest.raises(EdgekitError, match="not a onnx model"):
        edgekit.debug(onnx_build / "model_int8.onnx", mlp_data[:4], reference=onnx_build / "model_fp32.xml")


def test_data_that_does_not_fit_is_a_data_error(onnx_build: Path) -> None:
    with pytest.raises(DataError):
        edgekit.debug(onnx_build / "model_int8.onnx", np.zeros((4, 1, 7), np.float32))


def test_not_an_artifact_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"  # the suffix of an artifact, not its content
    bogus.write_bytes(b"\0" * 16)
    with pytest.raises(ModelFileError, match="model.onnx is not an artifact edgekit runs"):
        edgekit.debug(bogus, np.zeros((1, 1, 16), np.float32))
    with pytest.raises(ModelFileError, match="artifact not found"):
        edgekit.debug(tmp_path / "missing.onnx", np.zeros((1, 1, 16), np.float32))


def test_html_report_is_self_contained(onnx_build: Path, mlp_data: np.ndarray) -> None:
    reports = [edgekit.debug(onnx_build / FORMAT_FILES[f], mlp_data[100:120]) for f in ("onnx", "openvino")]
    page = render(reports)
    assert page.count("<svg") == 2 and page.count("<polyline") == 2
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "outlier" in page


def test_cli_debug_writes_json_and_exits_2_without_reference(onnx_build: Path, mlp_data: np.ndarray, tmp_path: Path) -> None:
    np.save(tmp_path / "calib.npy", mlp_data[:40])
    out = tmp_path / "report.json"
    cli = [sys.executable, "-m", "edgekit.cli", "debug"]
    done = subprocess.run([*cli, str(onnx_build / "model_int8.onnx"), "--calibration", str(tmp_path / "calib.npy"),
                           "--json", str(out), "--html", str(tmp_path / "r.html")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert document["schema_version"] == 1 and document["culprits"][0]["name"].startswith("outlier")
    assert (tmp_path / "r.html").read_text().count("<svg") == 1
    lone = tmp_path / "alone" / "model_int8.onnx"
    lone.parent.mkdir()
    shutil.copy(onnx_build / "model_int8.onnx", lone)
    failed = subprocess.run([*cli, str(lone), "--calibration", str(tmp_path / "calib.npy")], capture_output=True, text=True)
    assert failed.returncode == 2 and "error: no float reference" in failed.stderr and "hint:" in failed.stderr


@pytest.fixture(scope="module")
def head_and_residual_builds(tmp_path_factory: pytest.TempPathFactory, mlp_data: np.ndarray) -> dict[str, Path]:
    builds = {}
    for name, model, formats in (("sigmoid", sigmoid_head_onnx(), ["onnx"]), ("residual", residual_onnx(), ["onnx", "openvino"])):
        builds[name] = tmp_path_factory.mktemp(name)
        edgekit.convert(model, formats=formats, precision=["fp32", "int8"], calibration_data=mlp_data[:100],
                        validation_data=mlp_data[100:], output_dir=builds[name], rescue=False)
    return builds


def test_sigmoid_head_is_named_as_the_sensitive_final_layer(head_and_residual_builds, mlp_data: np.ndarray) -> None:
    report = edgekit.debug(head_and_residual_builds["sigmoid"] / "model_int8.onnx", mlp_data[100:], calibration=mlp_data[:100])
    culprit = report.culprits[0]
    assert culprit.name == "head_sigmoid" and culprit.op_type == "Sigmoid"
    assert culprit.reasons[0].startswith("sensitive final layer (Sigmoid)") and culprit.share > 0.5
    assert report.layers[-1].scale == pytest.approx(1 / 255, rel=0.01)  # ONNX Runtime's uint8 grid over [0, 1]


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_residual_add_of_mismatched_ranges_is_named(head_and_residual_builds, mlp_data: np.ndarray, fmt: str) -> None:
    report = edgekit.debug(head_and_residual_builds["residual"] / FORMAT_FILES[fmt], mlp_data[100:], calibration=mlp_data[:100])
    assert report.output_cosine < 0.99
    culprit = report.culprits[0]
    if fmt == "openvino":  # the add is its own layer: named with the range ratio of its branches
        assert culprit.name == "residual_add" and "ranges differ 26x" in culprit.reasons[0]
    else:  # ONNX Runtime's pre-processing fuses the add into a MatMul: the offset range is what shows
        assert culprit.name.startswith("branch_small") and "narrow range on a large offset" in culprit.reasons[0]
    assert report.layers[0].cosine > 0.999


# ------------------------------------------------------------------ all three formats (Keras CNN, slow)


@pytest.fixture(scope="module")
def keras_build(tmp_path_factory: pytest.TempPathFactory, digits) -> Path:
    x_train, x_test, y_train, _ = digits
    out = tmp_path_factory.mktemp("keras-build")
    edgekit.convert(outlier_classifier(x_train, y_train), formats=["onnx", "openvino", "tflite"],
                    precision=["fp32", "int8"], calibration_data=x_train[:200], validation_data=x_test[:100], output_dir=out, rescue=False)
    return out


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tflite"])
def test_trace_names_the_culprit_in_every_format(keras_build: Path, digits, fmt: str) -> None:
    x_train, x_test, _, _ = digits
    report = edgekit.debug(keras_build / FORMAT_FILES[fmt], x_test[:64], calibration=x_train[:200])
    assert report.output_cosine is not None and report.output_cosine < 0.99
    assert "outlier" in report.culprits[0].name and "outlier activations" in report.culprits[0].reasons[0]
    assert report.layers[0].cosine > 0.999  # the early layers are fine
    assert len(report.layers) >= 5 and report.top1_agreement is not None
    _check_consistent(report)


def test_the_report_lists_the_worst_covered_layers_beside_the_culprits(head_and_residual_builds, mlp_data: np.ndarray) -> None:
    wide = mlp_data[100:] * 3.0  # evaluation data three times wider than the calibration data
    report = edgekit.debug(head_and_residual_builds["sigmoid"] / "model_int8.onnx", wide, calibration=mlp_data[:100])
    assert report.coverage and report.coverage[0].coverage < 0.6 and report.coverage[0].clipped > 0.05
    assert [r.coverage for r in report.coverage] == sorted(r.coverage for r in report.coverage)
    same = edgekit.debug(head_and_residual_builds["sigmoid"] / "model_int8.onnx", mlp_data[:100], calibration=mlp_data[:100])
    assert all(r.coverage == 1.0 and r.clipped == 0.0 for r in same.coverage)
