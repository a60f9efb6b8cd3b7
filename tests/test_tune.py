"""edgekit tune on a real ONNX classifier: real builds, validated and profiled on this machine; the study
resumed without rebuilding, plan files rebuilt byte-identically, a point promoted, failures recorded."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgekit

pytestmark = pytest.mark.slow
COMMON = {"formats": ["onnx", "openvino"], "runs": 20, "min_seconds": 0.2, "warmup": 3, "seed": 7,
          "constraints": {"min_accuracy": 0.9}}


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    from tune_models import make_mlp

    return make_mlp(tmp_path_factory.mktemp("tune-model"))


@pytest.fixture(scope="module")
def tuned(mlp, tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "build"
    result = edgekit.tune(mlp["model"], trials=6, calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                          output_dir=out, **COMMON)
    return result, out


def test_a_study_of_real_builds_and_measurements(tuned):
    result, out = tuned
    ended = [r for r in result.trials if r.state != "duplicate"]  # a configuration proposed again is not rebuilt
    assert len(ended) == 6 and all(r.state == "complete" for r in ended)
    # the study starts with what `edgekit convert` builds: fp32 and plain int8 of each format
    assert [(r.config.format, r.config.precision) for r in result.trials[:4]] == [
        ("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    for record in ended:
        m = record.measurement
        assert m.runs >= 20 and m.ci_low_ms <= m.median_ms <= m.ci_high_ms and m.confidence >= 0.95
        assert record.build.validation in ("passed", "inconclusive") and record.values["accuracy"] >= 0.95
    fp32, int8 = result.trials[0], result.trials[1]
    assert fp32.values["accuracy"] == 1.0 and int8.build.size_bytes < 0.5 * fp32.build.size_bytes
    # float-layer sets from the trace of the plain int8 artifact: "none" first, then ranked culprits; plain int8
    # meets the int8 tolerances, so no rescue ran (tests/test_tune_rescue.py: one that does)
    assert all(fs.float_sets[0] == () for fs in result.space.formats.values())
    for fmt in ("onnx", "openvino"):
        sets = len(result.space.formats[fmt].float_sets) - 1
        assert (f"{fmt}: float-layer sets from the divergence trace of plain int8 ({sets} prefix{'es' if sets != 1 else ''} "
                "of its ranked culprits; plain int8 meets cosine >= 0.98 and top1 >= 0.95: no rescue)") in result.notes
    assert result.rescue == {}
    assert result.space.size() >= 40
    front = result.front
    assert front and {r.number for r in front} <= {r.number for r in result.trials if r.feasible}
    folder = Path(result.folder)
    assert folder == out.parent / "build.tune" and (folder / "study.db").is_file()
    document = json.loads((folder / "tune.json").read_text())
    assert len(document["trials"]) == len(result.trials) and document["front"] == [r.number for r in front]
    page = (folder / "tune-report.html").read_text()
    assert "<svg" in page and "not ranked" in page and page.count("<circle") == 6


def test_a_plan_file_rebuilds_byte_identically(tuned, tmp_path):
    result, _ = tuned
    for record in (result.trials[1], result.trials[3]):  # ONNX Runtime int8 (QDQ), OpenVINO NNCF int8
        plan = Path(record.build.build_dir).parent / f"{record.build.key[:20]}.plan.json"
        again = tmp_path / record.config.format
        argv = [sys.executable, "-m", "edgekit.cli", "convert", "--plan", str(plan), "--out", str(again), "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        rebuilt = json.loads(done.stdout)["artifacts"][0]
        # the study accepts an inconclusive int8 build, `convert` gates on it (exit 1): the same verdict again
        assert rebuilt["validation"]["status"] == record.build.validation, done.stderr
        assert done.returncode == (0 if record.build.validation == "passed" else 1), done.stderr
        cached = edgekit.load_build(record.build.build_dir).artifacts[0]
        assert [Path(f).name for f in rebuilt["files"]] == [Path(f).name for f in cached.files]
        assert [_sha(f) for f in rebuilt["files"]] == [_sha(f) for f in cached.files]
        assert rebuilt["sha256"] == record.build.sha256


def test_a_changed_model_is_refused_by_its_plan(tuned, tmp_path):
    result, _ = tuned
    record = result.trials[0]
    plan = json.loads((Path(record.build.build_dir).parent / f"{record.build.key[:20]}.plan.json").read_text())
    copy = tmp_path / "mlp.onnx"
    copy.write_bytes(Path(plan["model"]["path"]).read_bytes() + b"\0")
    plan["model"]["path"] = str(copy)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "convert", "--plan", str(tmp_path / "plan.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "changed since the plan was written (SHA-256 differs)" in done.stderr


def test_select_promotes_a_point_atomically(tuned):
    result, out = tuned
    point = result.front[0]
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "tune", "--select", str(point.number), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    build = edgekit.load_build(out)
    assert build.artifacts[0].sha256 == point.build.sha256 and (out / "edgekit-plan.json").is_file()
    missing = subprocess.run([sys.executable, "-m", "edgekit.cli", "tune", "--select", "99", "--out", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "the study has no trial 99" in missing.stderr
    assert edgekit.load_build(out).artifacts[0].sha256 == point.build.sha256  # a refused select changed nothing


def test_resuming_continues_the_study_without_rebuilding(tuned, mlp):
    result, out = tuned
    folder = Path(result.folder)
    outcomes = {p: p.stat().st_mtime_ns for p in (folder / "builds").glob("*.outcome.json")}
    more = edgekit.tune(mlp["model"], trials=8, calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                        output_dir=out, **COMMON)
    assert sum(r.state != "duplicate" for r in more.trials) == 8 and more.trials[: len(result.trials)] == result.trials
    assert all(p.stat().st_mtime_ns == t for p, t in outcomes.items())  # no finished build was built again
    with pytest.raises(edgekit.EdgekitError, match="was started with other settings \\(seed differ"):
        edgekit.tune(mlp["model"], trials=9, calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                     output_dir=out, **{**COMMON, "seed": 8})


def test_failed_validation_is_a_recorded_trial_not_the_end(mlp, tmp_path):
    import threading

    cancel, ended = threading.Event(), []

    def on_trial(record):
        ended.append(record.number)
        if len(ended) == 2:
            cancel.set()  # no trial is asked after this; the study keeps what ended

    result = edgekit.tune(mlp["model"], trials=5, calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                          output_dir=tmp_path / "strict", formats=["onnx"], precisions=["int8"], tolerances={"cosine": 0.99999},
                          runs=5, min_seconds=0.0, warmup=1, on_trial=on_trial, cancel=cancel)
    ended = [r for r in result.trials if r.state != "duplicate"]
    assert [r.state for r in ended] == ["failed", "failed"] and result.front == []
    assert all(r.reason.startswith("validation failed") and "cosine" in r.reason for r in ended)


def test_a_configuration_is_never_built_twice_and_an_exhausted_space_ends_the_search(mlp, tmp_path):
    from edgekit.tune.runner import MAX_REPEATS

    result = edgekit.tune(mlp["model"], trials=5, calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                          output_dir=tmp_path / "small", formats=["onnx"], precisions=["fp32", "fp16"], threads=[1],
                          runs=5, min_seconds=0.0, warmup=1)
    assert result.space_size == 2
    ended = [r for r in result.trials if r.state == "complete"]
    duplicates = [r for r in result.trials if r.state == "duplicate"]
    assert sorted(r.config.precision for r in ended) == ["fp16", "fp32"] and len(duplicates) >= MAX_REPEATS
    assert all(r.reason.startswith("duplicate of trial") for r in duplicates)
    assert len(list((tmp_path / "small.tune" / "builds").glob("*.outcome.json"))) == 2
    assert any("already tried (2 distinct tried of a space of 2)" in note for note in result.notes)
