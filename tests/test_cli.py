"""The edgekit CLI: exit codes (0 ok, 1 failed gate, 2 user error), messages with hints, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.manifest import MANIFEST_NAME

pytestmark = pytest.mark.slow  # the tests here convert or train real models


def edgekit_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_user_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "error: " in done.stderr and "hint: " in done.stderr
    for word in words:
        assert word in done.stderr


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or [p.name for p in out.iterdir()] == []


def test_missing_model(tmp_path, out):
    assert_user_error(edgekit_cli("convert", tmp_path / "nope.onnx", "--out", out), "model not found")
    assert_nothing_written(out)


def test_empty_file(tmp_path, out):
    (tmp_path / "empty.keras").write_bytes(b"")
    assert_user_error(edgekit_cli("convert", tmp_path / "empty.keras", "--out", out), "is empty (0 bytes)")
    assert_nothing_written(out)


def test_text_file_named_onnx(tmp_path, out):
    (tmp_path / "model.onnx").write_text("this is not a model\n")
    assert_user_error(edgekit_cli("convert", tmp_path / "model.onnx", "--out", out), "is a text file, not a model")
    assert_nothing_written(out)


def test_wrong_extension_is_sniffed_by_content(tmp_path, digits_keras_file):
    disguised = tmp_path / "weights.onnx"
    disguised.write_bytes(digits_keras_file.read_bytes())
    done = edgekit_cli("inspect", disguised, "--json")
    assert done.returncode == 0, done.stderr
    spec = json.loads(done.stdout)
    assert spec["framework"] == "keras3" and spec["inputs"][0]["name"] == "image"


def test_truncated_keras_file(tmp_path, digits_keras_file, out):
    cut = tmp_path / "cut.keras"
    cut.write_bytes(digits_keras_file.read_bytes()[: 2000])
    assert_user_error(edgekit_cli("convert", cut, "--out", out), "cut.keras")
    assert_nothing_written(out)


def test_zip_that_is_not_a_model(tmp_path, out):
    path = tmp_path / "notes.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert_user_error(edgekit_cli("convert", path, "--out", out), "not a Keras, TorchScript or torch.export model")


def test_legacy_pickle_is_refused(tmp_path, out):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    assert_user_error(edgekit_cli("convert", path, "--out", out), "pickle", "arbitrary code")


def test_unknown_target_and_format(digits_keras_file, out):
    assert_user_error(edgekit_cli("convert", digits_keras_file, "--target", "raspbery-pi", "--out", out), "unknown target")
    assert_user_error(edgekit_cli("convert", digits_keras_file, "--format", "coreml", "--out", out), "unknown format 'coreml'")
    assert_nothing_written(out)


def test_output_folder_not_writable(tmp_path, digits_keras_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_user_error(edgekit_cli("convert", digits_keras_file, "--out", blocker / "sub"), "cannot write to the output folder")


def test_bad_option_syntax(digits_keras_file, out):
    assert_user_error(edgekit_cli("convert", digits_keras_file, "--tolerance", "cosine", "--out", out), "expects KEY=VALUE")
    assert_user_error(edgekit_cli("convert", digits_keras_file, "--tolerance", "cosine=high", "--out", out), "not a valid value")


def test_calibration_of_the_wrong_shape_fails_before_converting(tmp_path, digits_keras_file, out):
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((10, 7, 7, 1), np.float32))
    done = edgekit_cli("convert", digits_keras_file, "-f", "onnx", "-p", "int8", "-c", calib, "--out", out)
    assert_user_error(done, "calibration sample 0 for input 'image' has shape (1, 7, 7, 1)", "(?, 8, 8, 1)")
    assert_nothing_written(out)


def test_convert_ok_and_failed_gate(tmp_path, digits_keras_file, digits):
    x_train = digits[0]
    calib = tmp_path / "calib.npy"
    np.save(calib, x_train[:100])
    val = tmp_path / "val.npy"
    np.save(val, digits[1])  # held-out digits: top-1 agreement on 200 of them can clear 0.95 at 95% confidence
    ok = edgekit_cli("convert", digits_keras_file, "-f", "onnx", "-f", "tflite", "-p", "int8", "-c", calib, "--validation", val,
                     "--out", tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr
    assert "passed" in ok.stdout and "digits_int8.onnx" in ok.stdout and "digits_int8.tflite" in ok.stdout
    manifest = json.loads((tmp_path / "ok" / MANIFEST_NAME).read_text())
    assert manifest["status"] == "passed" and len(manifest["artifacts"]) == 2

    gate = edgekit_cli("convert", digits_keras_file, "-f", "onnx", "-p", "int8", "-c", calib, "--tolerance", "cosine=0.9999999",
                       "--json", "--out", tmp_path / "gate")
    assert gate.returncode == 1, gate.stderr
    build = json.loads(gate.stdout)
    assert build["artifacts"][0]["validation"]["status"] == "failed"
    assert Path(build["artifacts"][0]["path"]).is_file()
