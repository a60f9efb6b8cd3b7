"""Optimization steps inside ``edgekit.convert``: QAT, structured pruning and distillation on held-out digits,
through the worker, the routes and validation, with every step recorded in the manifest."""
from __future__ import annotations

import json

import numpy as np
import pytest

import edgekit
from edgekit.errors import OptimizationBudgetError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def labelled(digits):
    x_train, x_test, y_train, y_test = digits
    return (x_train, y_train), (x_test, y_test)


def test_qat_keras3_file_builds_int8_in_every_format_within_one_point(digits_keras_file, labelled, tmp_path):
    train, val = labelled
    build = edgekit.convert(
        digits_keras_file, formats=["tflite", "onnx", "openvino"], optimizations=[edgekit.qat(epochs=3)],
        train_data=train, val_data=val, validation_samples=len(val[1]), output_dir=tmp_path / "qat",
    )
    report = build.optimization
    assert [r.step for r in report.records] == ["source", "qat"] and report.fake_quantized
    source_accuracy = report.source.accuracy
    assert source_accuracy > 0.95 and report.val_samples == len(val[1])
    assert {(a.format, a.precision) for a in build.artifacts} == {("tflite", "int8"), ("onnx", "int8"), ("openvino", "int8")}
    for artifact in build.artifacts:
        v = artifact.validation
        assert v.status == "passed", (artifact.format, v.message)
        assert v.accuracy >= source_accuracy - 0.01, (artifact.format, v.accuracy, source_accuracy)
        assert v.int8_weight_fraction >= 0.5 and any("QAT" in note or "quantization-aware" in note for note in artifact.notes)
    manifest = json.loads((tmp_path / "qat" / "edgekit-manifest.json").read_text())
    assert manifest["optimization"]["records"][1]["step"] == "qat"
    assert manifest["config"]["plan"]["optimizations"][0]["kind"] == "qat"


def test_structured_pruning_gives_a_smaller_artifact_within_two_points(digits_keras_file, labelled, tmp_path):
    train, val = labelled
    plain = edgekit.convert(digits_keras_file, formats="tflite", precision="fp32", val_data=val, output_dir=tmp_path / "plain")
    pruned = edgekit.convert(
        digits_keras_file, formats="tflite", precision="fp32", optimizations=[edgekit.prune(0.5, structured=True, epochs=6)],
        train_data=train, val_data=val, output_dir=tmp_path / "pruned",
    )
    source, after = pruned.optimization.records
    assert after.parameters < 0.7 * source.parameters
    assert after.accuracy >= source.accuracy - 0.02
    assert pruned.artifacts[0].size_bytes < 0.75 * plain.artifacts[0].size_bytes
    assert pruned.artifacts[0].validation.accuracy >= plain.artifacts[0].validation.accuracy - 0.02


def test_a_step_over_the_accuracy_budget_stops_the_build(digits_keras_file, labelled, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli import main

    train, val = labelled
    for name, (x, y) in (("train", train), ("val", val)):
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
    result = CliRunner().invoke(main, [
        "convert", str(digits_keras_file), "-f", "onnx", "--prune", "0.95", "--epochs", "0", "--train-data",
        str(tmp_path / "train.npz"), "--val-data", str(tmp_path / "val.npz"), "--budget", "max_accuracy_drop=0.02",
        "-o", str(tmp_path / "out"),
    ])
    assert result.exit_code == 1, result.output
    assert "prune(95%) dropped held-out accuracy from" in result.output and "the budget allows 2.0" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "edgekit-manifest.json").exists()
    with pytest.raises(OptimizationBudgetError, match="the build stopped here"):
        edgekit.convert(digits_keras_file, formats="onnx", optimizations=[edgekit.prune(0.95, epochs=0)], train_data=train,
                        val_data=val, budgets={"max_accuracy_drop": 0.02}, output_dir=tmp_path / "api")


def test_torch_chain_in_memory(labelled, tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    (x_train, y_train), (x_val, y_val) = labelled
    x_train, x_val = x_train.transpose(0, 3, 1, 2).copy(), x_val.transpose(0, 3, 1, 2).copy()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(30):
        for start in range(0, len(x_train), 64):
            optimizer.zero_grad()
            xb, yb = torch.from_numpy(x_train[start:start + 64]), torch.from_numpy(y_train[start:start + 64])
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    build = edgekit.convert(
        model, example_inputs=(torch.zeros(1, 1, 8, 8),), formats=["onnx", "openvino"],
        optimizations=[edgekit.prune(0.5, structured=True, epochs=4), edgekit.qat(epochs=2)],
        train_data=(x_train, y_train), val_data=(x_val, y_val), output_dir=tmp_path / "torch",
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's model is untouched
    source, pruned, qat = build.optimization.records
    assert pruned.parameters < 0.5 * source.parameters and qat.accuracy >= source.accuracy - 0.03
    for artifact in build.artifacts:
        assert artifact.precision == "int8" and artifact.validation.status == "passed", artifact.validation.message
        # on the same validation samples as the model it exports (the chain records accuracy on all of val_data)
        assert artifact.validation.accuracy >= artifact.validation.reference_accuracy - 0.03


def test_a_teacher_for_another_task_is_refused(labelled, tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    (x_train, y_train), (x_val, y_val) = labelled
    x_train, x_val = x_train.transpose(0, 3, 1, 2).copy(), x_val.transpose(0, 3, 1, 2).copy()
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    five_classes = nn.Sequential(nn.Flatten(), nn.Linear(64, 5)).eval()
    with pytest.raises(edgekit.EdgekitError, match=r"outputs shape \(5,\) per sample, the student \(10,\)"):
        edgekit.convert(student, example_inputs=(torch.zeros(1, 1, 8, 8),), formats="onnx", precision="fp32",
                        optimizations=[edgekit.distill(teacher=five_classes, epochs=1)],
                        train_data=(x_train, y_train), val_data=(x_val, y_val), output_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "edgekit-manifest.json").exists()
