"""The issue's "done when" on the digits demo: the contract written into every artifact, 0-255 data refused by
``edgekit profile`` with the contract line, raw PNGs with the contract applied measured at the build's accuracy."""
from __future__ import annotations

import json

import pytest

import edgekit
from edgekit.contract import stamp
from edgekit.errors import ContractError

pytestmark = pytest.mark.slow
QUICK = {"runs": 3, "min_seconds": 0.0, "warmup": 0, "op_profile_runs": 0}


def test_every_artifact_carries_the_manifest_contract(digits_contract_build):
    build = digits_contract_build["build"]
    manifest = edgekit.read_manifest(build.output_dir)
    assert len(build.artifacts) == 6 and build.passed
    for artifact, entry in zip(build.artifacts, manifest["artifacts"]):
        carried = stamp.verify(artifact.path, entry, manifest)
        assert carried == artifact.contract
        image = carried.input(artifact.inputs[0].name)
        assert (image.kind, image.color, image.range, image.origin["range"]) == ("image", "GRAY", (0.0, 1.0), "declared")
        assert image.layout == "NHWC" and image.dtype == "float32"
        probabilities = carried.outputs[0]
        assert probabilities.labels == tuple(f"digit {i}" for i in range(10))
        assert probabilities.score_threshold == 0.5
        assert carried.source_sha256 == build.source.sha256
        assert carried.build_hash == stamp.build_hash(manifest["config"]["plan"])
        assert (carried.format, carried.precision) == (artifact.format, artifact.precision)


def test_0_255_data_into_a_0_1_artifact_is_refused_with_the_contract_line(digits_contract_build):
    artifact = digits_contract_build["build"].artifact("tflite", "fp32")
    with pytest.raises(ContractError) as caught:
        edgekit.profile(artifact.path, dataset=digits_contract_build["raw255"], **QUICK)
    assert caught.value.message == (
        "dataset sample 0 for input 'image' holds values 0 .. 255 (450 of 450 samples outside 0 .. 1): it breaks "
        "the contract line inputs.image.range = [0.0, 1.0]")


def test_raw_pngs_with_the_contract_applied_measure_the_build_accuracy(digits_contract_build):
    build = digits_contract_build["build"]
    report = edgekit.profile(build.output_dir, dataset=digits_contract_build["png"], **QUICK)
    measured = {(r.format, r.precision): r.accuracy for r in report.results}
    for artifact in build.artifacts:
        accuracy = measured[(artifact.format, artifact.precision)]
        assert accuracy.samples == 450
        assert accuracy.accuracy == pytest.approx(artifact.validation.accuracy, abs=1e-12)
        assert accuracy.accuracy > 0.95
    # the source model itself, on the same pixels: at most one borderline sample flips in fp32
    import keras

    source = keras.saving.load_model(digits_contract_build["keras"], safe_mode=True)
    expected = float((source.predict(digits_contract_build["x"], verbose=0).argmax(1) == digits_contract_build["y"]).mean())
    assert measured[("onnx", "fp32")].accuracy == pytest.approx(expected, abs=1.5 / 450)


def test_raw_pngs_profiled_through_an_agent_measure_the_build_accuracy(digits_contract_build, tmp_path):
    """The agent runs the artifact; the contract's preprocessing of the raw PNGs is the same code as locally."""
    from agent_harness import TOKEN, start_agent

    build = digits_contract_build["build"]
    agent = start_agent(tmp_path / "agent")
    try:
        artifact = build.artifact("tflite", "int8")
        report = edgekit.profile(artifact.path, device=agent.url, token=TOKEN, dataset=digits_contract_build["png"],
                                 **QUICK)
        with pytest.raises(ContractError, match=r"inputs\.image\.range = \[0\.0, 1\.0\]"):
            edgekit.profile(artifact.path, device=agent.url, token=TOKEN, dataset=digits_contract_build["raw255"],
                            **QUICK)
    finally:
        agent.stop()
    (result,) = report.results
    assert result.status == "complete", result.error
    assert result.accuracy.samples == 450
    assert result.accuracy.accuracy == pytest.approx(artifact.validation.accuracy, abs=1e-12)


def test_a_contract_edited_in_the_manifest_refuses_profiling(digits_contract_build, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(digits_contract_build["build"].output_dir, folder)
    manifest_file = folder / "edgekit-manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["artifacts"][2]["contract"]["inputs"][0]["range"] = [0.0, 255.0]
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ContractError, match=r"the contract in digits_fp32.onnx differs from the manifest's: "
                                            r"inputs\.image\.range: \[0\.0, 255\.0\] -> \[0\.0, 1\.0\]"):
        edgekit.profile(folder, **QUICK)


def test_a_contract_the_calibration_data_contradict_refuses_the_build(digits, digits_keras_file, tmp_path):
    import subprocess
    import sys

    import numpy as np

    (tmp_path / "contract.yaml").write_text("inputs:\n  - name: image\n    range: [0, 1]\n")
    np.save(tmp_path / "raw.npy", digits[0][:64] * 255)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "convert", str(digits_keras_file), "-f", "onnx", "-p", "int8",
                           "-c", str(tmp_path / "raw.npy"), "--contract", str(tmp_path / "contract.yaml"), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert ("inputs.image.range = [0.0, 1.0] allows values 0 .. 1, but the build's data (64 samples) hold 0 .. 255"
            in done.stderr)
    assert "hint: fix the contract (--contract) or the data" in done.stderr
    assert not out.exists()


def test_the_python_snippet_reproduces_the_build_accuracy_on_raw_pngs(digits_contract_build):
    import os
    import runpy
    from pathlib import Path

    build = digits_contract_build["build"]
    folder = Path(build.output_dir) / "snippets"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"digits_{p}_{s}" for p in ("fp32", "int8") for s in ("tflite.py", "tflite.kt", "tflite.cc", "onnx.py", "xml.py")])
    pngs = sorted(digits_contract_build["png"].rglob("*.png"))
    assert len(pngs) == 450
    for artifact in (build.artifact("tflite", "int8"), build.artifact("onnx", "fp32")):
        snippet = runpy.run_path(str(folder / (Path(artifact.path).name.replace(".", "_") + ".py")))
        assert snippet["LABELS"] == [f"digit {i}" for i in range(10)] and snippet["SCORE_THRESHOLD"] == 0.5
        here = os.getcwd()
        os.chdir(build.output_dir)  # the snippet opens the artifact by its file name
        try:
            assert [snippet["run"](png)[0][0] for png in pngs[:3]] == ["digit 0"] * 3  # the whole loop, threshold on
        finally:
            os.chdir(here)
        snippet["run"].__globals__["SCORE_THRESHOLD"] = None  # every class ranked: top-1 over the whole test set
        runner = edgekit.open_runner(artifact.path)
        name = runner.inputs[0].name
        top = [snippet["postprocess"](runner.run({name: snippet["preprocess_image"](png)})[runner.outputs[0].name])[0][0]
               for png in pngs]
        correct = sum(label == f"digit {png.parent.name}" for label, png in zip(top, pngs))
        assert correct / 450 == pytest.approx(artifact.validation.accuracy, abs=1e-12)


def test_the_kotlin_and_cpp_snippets_carry_the_contract_values(digits_contract_build):
    from pathlib import Path

    folder = Path(digits_contract_build["build"].output_dir) / "snippets"
    kotlin = (folder / "digits_int8_tflite.kt").read_text()
    cpp = (folder / "digits_int8_tflite.cc").read_text()
    for text in (kotlin, cpp):
        assert "$" not in text
        assert "0.0039215686f" in text  # 1/255: pixels to [0, 1]
        assert '"digit 0", "digit 1"' in text
    assert "const val HEIGHT = 8" in kotlin and "const val CHANNELS = 1" in kotlin and "SCORE_THRESHOLD = 0.5f" in kotlin
    assert "constexpr int kHeight = 8, kWidth = 8, kChannels = 1;" in cpp and "kChannelsFirst = false" in cpp


def test_the_snippets_are_listed_in_the_manifest(digits_contract_build):
    import hashlib
    from pathlib import Path

    build = digits_contract_build["build"]
    listed = edgekit.read_manifest(build.output_dir)["config"]["run"]["snippets"]
    assert len(listed) == 10 and "snippets/digits_fp32_tflite.kt" in listed
    for name, sha256 in listed.items():
        assert hashlib.sha256((Path(build.output_dir) / name).read_bytes()).hexdigest() == sha256
