"""edgekit.convert end to end on the bundled digits classifier: every format, fp32 and int8, validated."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import Cancelled, ConversionError, DataError, InvalidOptionError, OutputError, UnsupportedRouteError
from edgekit.evaluation import accuracy
from edgekit.manifest import MANIFEST_NAME, read_manifest

pytestmark = pytest.mark.slow
FORMATS = ["tflite", "onnx", "openvino"]


@pytest.fixture(scope="module")
def digits_build(digits_keras_file, digits, tmp_path_factory):
    x_train, x_test, _, _ = digits
    return edgekit.convert(
        digits_keras_file, target="cpu-x86", formats=FORMATS, precision=["fp32", "int8"],
        calibration_data=x_train[:200], validation_data=x_test, output_dir=tmp_path_factory.mktemp("build"),
    )


def test_every_artifact_passes_with_real_parity(digits_build):
    assert digits_build.passed and not digits_build.failures
    assert {(a.format, a.precision) for a in digits_build.artifacts} == {(f, p) for f in FORMATS for p in ("fp32", "int8")}
    for artifact in digits_build.artifacts:
        v = artifact.validation
        assert v.samples == 200  # the default validation_samples
        if artifact.precision == "fp32":
            assert v.cosine >= 0.99999 and v.max_abs_error < 1e-4 and v.top1_agreement == 1.0, artifact.format
        else:
            assert v.cosine >= 0.99 and v.top1_agreement >= 0.97, artifact.format
            assert v.thresholds == {"cosine": 0.98, "top1_agreement": 0.95, "min_int8_weight_fraction": 0.5}
            assert v.int8_weight_fraction > 0.9, artifact.format  # counted in the file


def test_int8_accuracy_within_two_points_of_fp32(digits_build, digits):
    _, x_test, _, y_test = digits
    for fmt in FORMATS:
        fp32 = accuracy(digits_build.artifact(fmt, "fp32"), x_test, y_test)
        int8 = accuracy(digits_build.artifact(fmt, "int8"), x_test, y_test)
        assert fp32 >= 0.93, fmt
        assert int8 >= fp32 - 0.02, (fmt, fp32, int8)


def test_int8_artifacts_are_smaller(digits_build):
    """The file holding the weights (OpenVINO: the .bin; its .xml carries the contract and the graph)."""
    def weights_bytes(artifact) -> int:
        return Path(artifact.files[-1]).stat().st_size

    for fmt in FORMATS:
        assert weights_bytes(digits_build.artifact(fmt, "int8")) < 0.8 * weights_bytes(digits_build.artifact(fmt, "fp32"))


def test_manifest_records_files_hashes_and_versions(digits_build, digits_keras_file):
    manifest = read_manifest(Path(digits_build.output_dir))
    assert manifest["status"] == "passed" and manifest["schema_version"] == 2
    assert manifest["source"]["sha256"] == hashlib.sha256(digits_keras_file.read_bytes()).hexdigest()
    assert manifest["source"]["framework"] == "keras3"
    assert manifest["config"]["plan"]["precisions"] == ["fp32", "int8"]
    assert [job["route"] for job in manifest["config"]["plan"]["jobs"]] == ["keras_tflite"] * 2 + ["keras_onnx"] * 2 + [
        "keras_openvino"] * 2
    assert manifest["config"]["run"]["validation_data"] == "validation_data"
    loaded = edgekit.load_build(digits_build.output_dir)
    assert loaded == digits_build  # the manifest read back is the build convert returned
    assert {"tensorflow", "onnxruntime", "openvino", "edgekit"} <= set(manifest["versions"])
    for entry in manifest["artifacts"]:
        files = [Path(f) for f in entry["files"]]
        assert entry["size_bytes"] == sum(f.stat().st_size for f in files)
        digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
        assert entry["sha256"] == digest
    openvino = digits_build.artifact("openvino", "fp32")
    assert [Path(f).suffix for f in openvino.files] == [".xml", ".bin"]
    leftovers = [p.name for p in Path(digits_build.output_dir).iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_rebuild_is_byte_identical_where_the_converter_allows(digits_build, digits_keras_file, digits, tmp_path):
    x_train, x_test, _, _ = digits
    again = edgekit.convert(
        digits_keras_file, formats=FORMATS, precision=["fp32", "int8"], calibration_data=x_train[:200],
        validation_data=x_test, output_dir=tmp_path,
    )  # the same inputs (the contract each artifact carries holds the ranges measured on them), another folder
    for artifact in again.artifacts:
        assert artifact.sha256 == digits_build.artifact(artifact.format, artifact.precision).sha256, artifact.format


def test_failed_gate_keeps_the_artifact_marked_failed(digits_keras_file, digits, tmp_path):
    x_train, x_test, _, _ = digits
    build = edgekit.convert(
        digits_keras_file, formats=["onnx"], precision="int8", calibration_data=x_train[:100],
        validation_data=x_test[:50], tolerances={"cosine": 0.9999999}, output_dir=tmp_path,
    )
    artifact = build.artifact("onnx", "int8")
    assert not build.passed and artifact.validation.status == "failed"
    assert "cosine" in artifact.validation.message and "vs >= 0.9999999: failed" in artifact.validation.message
    assert Path(artifact.path).is_file()
    assert read_manifest(tmp_path)["status"] == "failed"


def test_in_memory_keras_model_converts_in_process(digits, tmp_path):
    import keras

    x_train, x_test, y_train, _ = digits
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, verbose=0)
    build = edgekit.convert(model, formats=["onnx", "tflite"], precision="fp32", validation_data=x_test[:30], output_dir=tmp_path)
    assert build.passed and build.source.kind == "in-memory"
    assert {a.format for a in build.artifacts} == {"onnx", "tflite"}
    assert all(a.validation.cosine > 0.99999 for a in build.artifacts)
    assert Path(build.artifacts[0].path).name == "model_fp32.onnx"


# -- faults: nothing half-written --------------------------------------------------------------------


def _written(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cancel_stops_the_build_and_writes_nothing(digits_keras_file, digits, tmp_path):
    x_train = digits[0]
    cancel = threading.Event()

    def on_progress(event):
        if event.stage.startswith("convert:"):
            cancel.set()

    with pytest.raises(Cancelled):
        edgekit.convert(digits_keras_file, formats=["onnx"], precision="fp32", calibration_data=x_train[:20],
                        output_dir=tmp_path, progress=on_progress, cancel=cancel)
    assert _written(tmp_path) == []


def test_timeout_stops_a_hanging_step(digits_keras_file, tmp_path):
    with pytest.raises(ConversionError, match="did not finish within"):
        edgekit.convert(digits_keras_file, formats=["onnx"], precision="fp32", output_dir=tmp_path, timeout=0.2)
    assert _written(tmp_path) == []


def _kill_workers() -> int:
    """SIGKILL this test process's own worker children (not other builds running on the machine)."""
    killed = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"edgekit.worker" in cmdline and parent == os.getpid():
            os.kill(int(pid), signal.SIGKILL)
            killed += 1
    return killed


def test_a_crashed_converter_fails_its_route_and_keeps_the_others(digits_keras_file, digits, tmp_path):
    x_train, x_test, _, _ = digits
    state = {"killed": 0}

    def on_progress(event):
        if event.stage == "convert:onnx/fp32" and not state["killed"]:
            state["killed"] = _kill_workers()

    build = edgekit.convert(digits_keras_file, formats=["tflite", "onnx", "openvino"], precision="fp32",
                            validation_data=x_test[:20], output_dir=tmp_path, progress=on_progress)
    assert state["killed"] == 1
    assert [(f.format, f.precision) for f in build.failures] == [("onnx", "fp32")]
    assert "crashed" in build.failures[0].error and "SIGKILL" in build.failures[0].error
    assert {a.format for a in build.artifacts} == {"tflite", "openvino"} and all(a.passed for a in build.artifacts)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["status"] == "failed" and manifest["failures"][0]["format"] == "onnx"


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"formats": ["coreml"]}, InvalidOptionError, "unknown format 'coreml'"),
        ({"precision": "int4"}, InvalidOptionError, "unknown precision 'int4'"),
        ({"formats": ["onnx"], "precision": "dynamic"}, UnsupportedRouteError, "does not support precision dynamic"),
        ({"formats": ["onnx"], "precision": "int8"}, DataError, "int8 quantization needs calibration data"),
        ({"formats": ["onnx"], "precision": "int8", "calibration_data": np.zeros((0, 8, 8, 1), np.float32)}, DataError, "empty"),
        ({"formats": ["onnx"], "precision": "int8", "calibration_data": np.zeros((4, 8, 8), np.float32)}, DataError, "shape"),
        ({"formats": ["onnx"], "precision": "int8", "calibration_data": np.zeros((4, 8, 8, 1), np.uint8)}, DataError, "dtype"),
        ({"formats": ["onnx"], "quantization": {"per_chanel": False}}, InvalidOptionError, "per_chanel"),
    ],
)
def test_bad_options_fail_before_writing(digits_keras_file, tmp_path, kwargs, error, words):
    out = tmp_path / "out"
    with pytest.raises(error) as info:
        edgekit.convert(digits_keras_file, output_dir=out, **kwargs)
    assert words in info.value.message and info.value.hint
    assert [p for p in _written(out) if not p.startswith(".edgekit-probe")] == []


def test_output_folder_that_cannot_be_created(digits_keras_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to the output folder"):
        edgekit.convert(digits_keras_file, formats=["onnx"], output_dir=blocker / "out")


def test_an_int8_artifact_that_is_not_really_quantized_fails(digits_build):
    from edgekit.options import Tolerances
    from edgekit.validation import check_quantized

    for fmt in FORMATS:
        float_file = digits_build.artifact(fmt, "fp32")  # float weights, judged as if it claimed to be int8
        verdict = check_quantized(float_file.validation, Path(float_file.path), fmt, Tolerances.default_for("int8"))
        assert verdict.status == "failed" and verdict.int8_weight_fraction == 0.0, fmt
        assert "0% of the weights are stored as int8 (< 50%): not really quantized" in verdict.message


def test_keras_onnx_rebuild_is_identical_even_within_one_process(digits_keras_file, digits, tmp_path):
    """tf2onnx numbers names from process-wide counters; the route renames them by their place in the graph."""
    x_train, x_test, _, _ = digits
    builds = [
        edgekit.convert(digits_keras_file, formats=["onnx"], precision=["fp32", "int8"], calibration_data=x_train[:100],
                        validation_data=x_test[:5], output_dir=tmp_path / str(index), isolate=False)
        for index in range(2)
    ]
    for artifact in builds[0].artifacts:
        assert artifact.sha256 == builds[1].artifact("onnx", artifact.precision).sha256, artifact.precision
