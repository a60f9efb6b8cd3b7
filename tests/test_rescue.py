"""Automatic int8 rescue (edgekit.rescue) on models with a known culprit, through edgekit.convert."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from debug_models import int8_compute_share, outlier_classifier, outlier_onnx, residual_onnx, sigmoid_head_onnx

import edgekit
from edgekit.manifest import read_manifest

pytestmark = pytest.mark.slow  # every test here converts real models

TARGET = {"cosine": 0.99, "top1": 0.97}


@pytest.fixture(scope="module")
def mlp_data() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(164, 1, 16)).astype(np.float32)


def test_rescue_onnx_and_openvino_keeps_the_culprit_in_float(tmp_path: Path, mlp_data: np.ndarray) -> None:
    build = edgekit.convert(outlier_onnx(), formats=["onnx", "openvino"], precision="int8", calibration_data=mlp_data[:100],
                            validation_data=mlp_data[100:], output_dir=tmp_path, accuracy_target={"cosine": 0.999},
                            tolerances={"min_int8_compute_share": 0.3})  # tiny MLPs: the culprits hold much of the compute
    assert build.passed  # (random weights and inputs: near-tied logits make top-1 a poor target here)
    rescue = read_manifest(tmp_path)["config"]["run"]["rescue"]
    for label in ("onnx/int8", "openvino/int8"):
        record = rescue[label]
        assert record["met"] and record["curve"][0]["cosine"] < 0.5  # plain int8 was ruined
        assert record["curve"][0]["culprits"][0]["name"].startswith("outlier")
        assert any(name.startswith("outlier") for name in record["float_layers"])
        assert "hidden" not in record["float_layers"]  # the healthy layer stays int8
        assert record["cosine"] >= 0.999
        assert record["reference_latency_ms"] > 0 and record["curve"][0]["latency_ms"] > 0  # plain int8, timed
        assert all(t["latency_ms"] > 0 and t["latency_vs_plain"] > 0 for t in record["tries"] if "error" not in t)
        assert record["latency_ms"] == record["curve"][-1]["latency_ms"]
    artifact = build.artifact("onnx", "int8")
    assert any(note.startswith("accuracy rescue: met the target") for note in artifact.notes)


def test_integer_only_target_cannot_keep_float_and_says_so(tmp_path: Path, mlp_data: np.ndarray) -> None:
    profile = tmp_path / "npu.yaml"
    profile.write_text("name: int-only\ndescription: integer-only test NPU\nextends: cpu-x86\nallow_float_fallback: false\n")
    build = edgekit.convert(outlier_onnx(), target=profile, formats="onnx", precision="int8",
                            calibration_data=mlp_data[:100], validation_data=mlp_data[100:], output_dir=tmp_path / "out",
                            accuracy_target=TARGET)
    assert not build.passed  # the target cannot be met without float layers
    artifact = build.artifact("onnx", "int8")
    assert artifact.validation.status == "failed" and Path(artifact.path).is_file()  # best artifact kept, marked failed
    record = read_manifest(tmp_path / "out")["config"]["run"]["rescue"]["onnx/int8"]
    assert not record["met"] and record["float_layers"] == []
    assert "integer-only" in record["notes"][0]
    assert any("did NOT meet the target" in note for note in artifact.notes)


def test_rescue_every_format_of_a_trained_cnn(tmp_path: Path, digits) -> None:
    x_train, x_test, y_train, _ = digits
    model = outlier_classifier(x_train, y_train)
    build = edgekit.convert(model, formats=["onnx", "openvino", "tflite"], precision="int8", calibration_data=x_train[:200],
                            validation_data=x_test[:100], output_dir=tmp_path, accuracy_target=TARGET)
    rescue = read_manifest(tmp_path)["config"]["run"]["rescue"]
    for fmt in ("onnx", "openvino", "tflite"):
        artifact = build.artifact(fmt, "int8")
        record = rescue[f"{fmt}/int8"]
        assert record["curve"][0]["cosine"] < 0.99  # plain int8 misses the target
        assert artifact.validation.cosine >= 0.99 and artifact.validation.top1_agreement >= 0.97, fmt
        assert record["float_layers"] and int8_compute_share(model, record["float_layers"]) >= 0.8
        assert record["size_bytes"] < 0.5 * record["reference_size_bytes"] or fmt == "openvino"


@pytest.mark.parametrize("name", ["sigmoid", "residual"])
def test_rescue_fixes_a_sigmoid_head_and_a_residual_add_in_onnx(tmp_path: Path, mlp_data: np.ndarray, name: str) -> None:
    model = sigmoid_head_onnx() if name == "sigmoid" else residual_onnx()
    build = edgekit.convert(model, formats="onnx", precision="int8", calibration_data=mlp_data[:100],
                            validation_data=mlp_data[100:], output_dir=tmp_path, accuracy_target={"cosine": 0.999},
                            tolerances={"min_int8_compute_share": 0.3})  # tiny MLPs: the culprits hold much of the compute
    record = read_manifest(tmp_path)["config"]["run"]["rescue"]["onnx/int8"]
    assert record["met"] and record["curve"][0]["cosine"] < 0.999 and record["cosine"] >= 0.999
    # int16 activations; percentile calibration too where it helps (with 7-bit weights, edgekit.cpu_int8)
    changes = record["scheme_changes"]
    assert changes["activations"] == "int16" and set(changes) <= {"activations", "calibration_method"}
    first = record["tries"][0]
    if name == "sigmoid":  # the head (sigmoid + the layer feeding it) is one group, but it is 80% of the compute
        assert first["remedies"][0]["kind"] == "head_float" and first["remedies"][0]["layers"][0] == "head_sigmoid"
        assert first["int8_compute_share"] == pytest.approx(0.2) and not first["accepted"]
        assert record["float_layers"] == [] and record["int8_compute_share"] == 1.0 and build.passed
    else:  # int16 alone does not fix the residual add (tried last: cosine 0.72), with the branch in float it does
        assert record["float_layers"][0] == "branch_small/MatMulAddFusion" and first["accepted"]
        assert record["tries"][-1]["remedies"][0]["kind"] == "drop_float_layers" and not record["tries"][-1]["accepted"]
        assert any("fails another gate" in note for note in record["notes"])  # 38% of the weights in int8
