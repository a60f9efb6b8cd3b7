"""Optimization options without training: steps, recipes, labelled data checks and chain rules."""
from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.data import load_feeds
from edgekit.errors import DataError, InvalidOptionError
from edgekit.optimize.labelled import load_labelled
from edgekit.optimize.plan import precisions_with, resolve_steps
from edgekit.optimize.recipe import load_recipe
from edgekit.specs import TensorSpec

IMAGE = (TensorSpec(name="image", shape=(None, 8, 8, 1), dtype="float32"),)
LOGITS = (TensorSpec(name="logits", shape=(None, 10), dtype="float32"),)


def test_steps_are_checked_options():
    step = edgekit.prune(0.5, structured=True, epochs=4)
    assert (step.kind, step.sparsity, step.structured, step.epochs) == ("prune", 0.5, True, 4)
    assert edgekit.qat().epochs == 3 and edgekit.qat().learning_rate == pytest.approx(1e-4)
    assert edgekit.distill(student_width=0.4).label == "distill(student 40% width)"
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(InvalidOptionError, match="sparsity: Input should be (greater|less) than"):
            edgekit.prune(bad)
    with pytest.raises(InvalidOptionError, match="unexpected keyword|Extra inputs are not permitted"):
        edgekit.qat(epoch=3)
    with pytest.raises(InvalidOptionError, match="temperature"):
        edgekit.distill(temperature=0)


def test_qat_must_be_last_and_needs_labelled_data():
    with pytest.raises(InvalidOptionError, match="qat must be the last optimization step"):
        resolve_steps([edgekit.qat(), edgekit.prune(0.5)], (1, 2), (1, 2))
    with pytest.raises(DataError, match="need labelled data: val_data not given"):
        resolve_steps([edgekit.prune(0.5)], (np.zeros(1), np.zeros(1)), None)
    with pytest.raises(InvalidOptionError, match="must be edgekit.prune"):
        resolve_steps(["prune"], (1, 2), (1, 2))


def test_qat_builds_int8_only():
    steps = [edgekit.qat()]
    assert precisions_with(steps, ["fp32"], explicit=False) == ["int8"]
    assert precisions_with(steps, ["int8"], explicit=True) == ["int8"]
    with pytest.raises(InvalidOptionError, match="int8 artifacts only, not fp32"):
        precisions_with(steps, ["fp32", "int8"], explicit=True)
    assert precisions_with([edgekit.prune(0.5)], ["fp32"], explicit=True) == ["fp32"]


def test_yaml_and_toml_recipes(tmp_path):
    (tmp_path / "train.npz").write_bytes(b"")
    yaml_recipe = tmp_path / "recipe.yaml"
    yaml_recipe.write_text(
        "optimizations:\n  - prune: {sparsity: 0.5, structured: true, epochs: 4}\n"
        "  - distill: {teacher: models/teacher.keras, temperature: 3}\n  - qat: {epochs: 2}\n"
        "train_data: train.npz\nval_data: /data/val.npz\n"
    )
    recipe = load_recipe(yaml_recipe)
    assert [s.kind for s in recipe.steps] == ["prune", "distill", "qat"]
    assert recipe.steps[0].structured and recipe.steps[0].epochs == 4 and recipe.steps[2].epochs == 2
    assert recipe.steps[1].teacher == str(tmp_path / "models" / "teacher.keras") and recipe.steps[1].temperature == 3
    assert recipe.train_data == tmp_path / "train.npz" and str(recipe.val_data) == "/data/val.npz"

    toml_recipe = tmp_path / "recipe.toml"
    toml_recipe.write_text('[[optimizations]]\nkind = "prune"\nsparsity = 0.25\n\n[[optimizations]]\nkind = "qat"\n')
    assert [(s.kind, getattr(s, "sparsity", None)) for s in load_recipe(toml_recipe).steps] == [("prune", 0.25), ("qat", None)]
    steps, train, val = resolve_steps(str(yaml_recipe), None, "given.npz")
    assert len(steps) == 3 and train == tmp_path / "train.npz" and val == "given.npz"


@pytest.mark.parametrize("text, message", [
    ("optimizations:\n  - prune: {sparsity: 2}\n", r"optimizations\[0\]: invalid prune step: sparsity"),
    ("optimizations:\n  - shrink: {}\n", "unknown step 'shrink'"),
    ("optimizations: []\n", "lists no optimizations"),
    ("steps:\n  - qat: {}\n", "unknown field"),
    ("optimizations:\n  - !!python/object/apply:os.system ['echo pwned']\n", "neither valid YAML nor valid TOML"),
    ("optimizations:\n  - qat: {}\n  - prune: {}\n", "qat must be the last"),
])
def test_bad_recipes_are_refused(tmp_path, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(InvalidOptionError, match=message):
        resolve_steps(path, (1, 2), (1, 2))


def test_labelled_data_forms(tmp_path):
    x, y = np.random.default_rng(0).random((20, 8, 8, 1)), np.arange(20) % 10
    data = load_labelled((x, y), IMAGE, LOGITS, "train_data")
    assert data.task == "classification" and data.num_classes == 10 and len(data) == 20
    assert data.x["image"].dtype == np.float32 and load_feeds(data.x, IMAGE, limit=3)[2]["image"].shape == (1, 8, 8, 1)
    one_hot = np.eye(10)[y]
    assert np.array_equal(load_labelled({"x": x, "y": one_hot}, IMAGE, LOGITS, "val_data").y, y)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    assert np.array_equal(load_labelled(tmp_path / "train.npz", IMAGE, LOGITS, "train_data").y, y)
    regression = load_labelled((x, np.zeros((20, 10))), IMAGE, LOGITS, "train_data")
    assert regression.task == "regression"


@pytest.mark.parametrize("x_shape, y, message", [
    ((20, 8, 8), np.zeros(20, int), r"has shape \(20, 8, 8\), the model takes \(\?, 8, 8, 1\)"),
    ((20, 8, 8, 3), np.zeros(20, int), r"reshape it to \(n, 8, 8, 1\)"),
    ((20, 8, 8, 1), np.zeros(19, int), "20 input samples but 19 labels"),
    ((20, 8, 8, 1), np.full(20, 12), r"labels range over 12..12, the output 'logits' has 10 classes"),
    ((20, 8, 8, 1), np.zeros((20, 3)), r"labels of shape \(20, 3\) do not match the output 'logits'"),
])
def test_labelled_data_that_does_not_fit(x_shape, y, message):
    with pytest.raises(DataError, match=message):
        load_labelled((np.zeros(x_shape, np.float32), y), IMAGE, LOGITS, "train_data")


def test_labelled_files_are_not_unpickled(tmp_path):
    np.savez(tmp_path / "evil.npz", x=np.array([object()], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="holds Python objects"):
        load_labelled(tmp_path / "evil.npz", IMAGE, LOGITS, "train_data")
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((2, 8, 8, 1)))
    with pytest.raises(DataError, match="has no array 'y'"):
        load_labelled(tmp_path / "nolabels.npz", IMAGE, LOGITS, "train_data")


def test_onnx_models_cannot_be_trained():
    from edgekit.optimize.run import backend_for

    with pytest.raises(InvalidOptionError, match="onnx models cannot be pruned"):
        backend_for("onnx")


def test_cli_refuses_inconsistent_optimization_flags(tmp_path):
    import zipfile

    from click.testing import CliRunner

    from edgekit.cli import main

    digits_keras_file = tmp_path / "net.keras"  # refused before the model is loaded: only its kind is read
    with zipfile.ZipFile(digits_keras_file, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.15.0"}')
        archive.writestr("config.json", "{}")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("optimizations:\n  - qat: {}\n")
    runner = CliRunner()
    lone = runner.invoke(main, ["convert", str(digits_keras_file), "--structured"])
    assert lone.exit_code == 2 and "--structured needs --prune SPARSITY" in lone.output and "Traceback" not in lone.output
    both = runner.invoke(main, ["convert", str(digits_keras_file), "--recipe", str(recipe), "--qat", "2"])
    assert both.exit_code == 2 and "either --recipe or --prune/--distill/--qat" in both.output
    no_data = runner.invoke(main, ["convert", str(digits_keras_file), "--prune", "0.5", "-o", str(tmp_path / "out")])
    assert no_data.exit_code == 2 and "need labelled data: train_data and val_data not given" in no_data.output
