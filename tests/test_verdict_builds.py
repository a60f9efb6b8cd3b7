"""Verdicts of real int8 builds (ONNX Runtime quantization of small ONNX models): held-out validation data,
output kinds, inconclusive verdicts and the CLI's exit codes."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import edgekit
from edgekit.cli import main
from edgekit.errors import DataError
from edgekit.holdout import feeds_digest
from edgekit.manifest import read_manifest

pytestmark = pytest.mark.slow


def _model(outputs: dict[str, tuple[int, str | None]], seed: int = 0):
    """x (N, 64) -> one Gemm per output (+ an activation); random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, infos = [], [], []
    for name, (width, activation) in outputs.items():
        inits += [numpy_helper.from_array(rng.standard_normal((64, width)).astype(np.float32) * 0.3, f"{name}_w"),
                  numpy_helper.from_array(rng.standard_normal(width).astype(np.float32) * 0.1, f"{name}_b")]
        raw = f"{name}_raw" if activation else name
        nodes.append(helper.make_node("Gemm", ["x", f"{name}_w", f"{name}_b"], [raw]))
        if activation:
            nodes.append(helper.make_node(activation, [raw], [name], **({"axis": -1} if activation == "Softmax" else {})))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", width]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])
    graph = helper.make_graph(nodes, "heads", [x], infos, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def x(digits):
    x_train, x_test, _, _ = digits
    return np.concatenate([x_train, x_test]).reshape(-1, 64)


def test_an_embedding_and_regression_scores_are_judged_by_their_own_rules_on_held_out_data(x, tmp_path):
    model = _model({"features": (1280, "Relu"), "scores": (3, None)})
    build = edgekit.convert(model, formats=["onnx"], precision="int8", calibration_data=x[:200], output_dir=tmp_path)
    v = build.artifact("onnx", "int8").validation
    assert v.data_origin == "held_out" and v.samples == 60 and not v.on_calibration
    features, scores = (next(m for m in v.outputs if m.name == n) for n in ("features", "scores"))
    assert features.kind == "embedding" and features.top1_agreement is None and features.check("cosine").threshold == 0.98
    assert scores.kind == "regression" and scores.top1_agreement is None and scores.check("relative_error").threshold == 0.1
    assert features.cosine > 0.99 and scores.relative_error < 0.1
    assert v.top1_agreement is None and v.status == "passed"
    split = read_manifest(tmp_path)["config"]["run"]["data_split"]
    assert split["method"] == "random (seed 0)"  # no classifier output: nothing to stratify by
    held = split["validation"]["indices"]
    assert len(held) == 60 and not set(held) & set(split["calibration"]["indices"])
    feeds = [{"x": x[i : i + 1]} for i in held]
    assert split["validation"]["sha256"] == feeds_digest(feeds)
    manifest = read_manifest(tmp_path)
    assert manifest["schema_version"] == 2 and manifest["config"]["run"]["data"]["samples"] == 140
    assert manifest["artifacts"][0]["validation"]["outputs"][0]["rule"].startswith("embedding: cosine >= 0.98")


def test_declared_kinds_override_the_guess(x, tmp_path):
    model = _model({"features": (1280, "Relu")})
    build = edgekit.convert(model, formats=["onnx"], precision="int8", calibration_data=x[:200], output_dir=tmp_path,
                            output_kinds={"features": "classifier"})
    metrics = build.artifact("onnx", "int8").validation.outputs[0]
    assert metrics.kind == "classifier" and metrics.kind_source == "declared" and metrics.top1_agreement is not None


def test_a_classifier_split_is_stratified_and_64_calibration_samples_do_not_pass(x, tmp_path):
    model = _model({"probs": (10, "Softmax")})
    build = edgekit.convert(model, formats=["onnx"], precision="int8", calibration_data=x[:300], output_dir=tmp_path / "a")
    split = read_manifest(tmp_path / "a")["config"]["run"]["data_split"]
    assert split["method"].startswith("stratified") and len(split["validation"]["indices"]) == 90
    on_calibration = edgekit.convert(model, formats=["onnx"], precision="int8", calibration_data=x[:64],
                                     validate_on_calibration=True, output_dir=tmp_path / "b")
    v = on_calibration.artifact("onnx", "int8").validation
    assert v.on_calibration and v.data_origin == "calibration" and v.samples == 64
    assert "validated on the calibration data" in v.message
    assert v.top1_interval[0] < 0.95 and v.status == "inconclusive"  # 64 samples cannot show >= 0.95 at 95%
    assert not on_calibration.passed and on_calibration.verdict == "inconclusive" and not on_calibration.accepted
    assert read_manifest(tmp_path / "b")["status"] == "inconclusive"
    assert build.artifact("onnx", "int8").validation.samples == 90


def test_too_few_calibration_samples_to_split_is_a_clear_error(x, tmp_path):
    with pytest.raises(DataError, match="24 calibration samples are too few"):
        edgekit.convert(_model({"probs": (10, "Softmax")}), formats=["onnx"], precision="int8",
                        calibration_data=x[:24], output_dir=tmp_path)


def test_the_cli_exits_1_for_an_inconclusive_verdict_unless_allowed(x, tmp_path):
    import onnx

    onnx.save(_model({"probs": (10, "Softmax")}), tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", x[:64])
    args = ["convert", str(tmp_path / "m.onnx"), "-f", "onnx", "-p", "int8", "-c", str(tmp_path / "calib.npy"),
            "--validate-on-calibration"]
    strict = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "strict")])
    assert strict.exit_code == 1, strict.output
    assert "inconclusive" in strict.output and "--allow-inconclusive" in strict.output
    allowed = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "allowed"), "--allow-inconclusive"])
    assert allowed.exit_code == 0, allowed.output
    bad = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "bad"), "--output-kind", "prbs=embedding"])
    assert bad.exit_code == 2 and "did you mean 'probs'" in bad.output
