"""Local profiling: the measurement protocol's statistics, per-op times, memory, accuracy, JSON/HTML and the CLI."""
from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import numpy as np
import pytest
from click.testing import CliRunner
from profiling_models import make_artifacts

from edgekit.cli import main
from edgekit.profiling import ProfileReport, profile
from edgekit.profiling.protocol import median_ci, summarize

FAST = {"runs": 30, "min_seconds": 0.1, "warmup": 3, "op_profile_runs": 5}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return make_artifacts(tmp_path_factory.mktemp("profiling"))


@pytest.fixture(scope="module")
def build_report(artifacts) -> ProfileReport:
    return profile(artifacts["build"], dataset=artifacts["dataset"], **FAST)


def test_median_ci_is_the_binomial_order_statistic_interval():
    assert median_ci(np.arange(5.0)) == (0.0, 4.0, 0.9375)  # too few samples for 95%: [min, max], its real coverage
    low, high, coverage = median_ci(np.arange(6.0))
    assert (low, high) == (0.0, 5.0) and coverage == pytest.approx(1 - 2 / 64)
    values = np.sort(np.random.default_rng(0).normal(size=1000))
    low, high, coverage = median_ci(values)
    assert 0.95 <= coverage < 0.96
    assert low < np.median(values) < high
    assert (low, high) == (values[468], values[531])  # j = 469 (1-based) for n = 1000


def test_stats_match_the_raw_latencies(build_report):
    for result in build_report.results:
        assert result.status == "complete", result.error
        raw = np.asarray(result.latencies_ms)
        assert result.runs == len(raw) >= 30 and result.measured_seconds >= 0.1
        assert result.median_ms == pytest.approx(np.median(raw))
        assert result.mean_ms == pytest.approx(raw.mean())
        assert result.std_ms == pytest.approx(raw.std(ddof=1))
        assert result.min_ms == raw.min() and result.max_ms == raw.max()
        assert result.min_ms <= result.median_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
        assert result.median_ci_low_ms <= result.median_ms <= result.median_ci_high_ms
        assert result.median_ci_confidence >= 0.95
        assert result.threads == 1 and result.warmup_runs == 3 and result.load_ms > 0 and result.first_inference_ms > 0
        assert result.peak_rss_bytes > result.baseline_rss_bytes > 10 << 20
        assert result.stopped_by == "target"


def test_per_op_times_and_accuracy_with_parity(build_report, artifacts):
    onnx, openvino = build_report.result("onnx"), build_report.result("openvino")
    assert {op.type for op in onnx.ops} >= {"Softmax"} and sum(op.share for op in onnx.ops) == pytest.approx(1.0)
    assert openvino.ops and all(op.ms >= 0 for op in openvino.ops)
    for result in (onnx, openvino):
        assert result.accuracy.samples == 200 and result.accuracy.dataset == "digits_test.npz"
        assert result.accuracy.accuracy == pytest.approx(artifacts["expected_accuracy"], abs=0.006)
        assert result.accuracy.parity.cosine > 0.99999 and result.accuracy.parity.top1_agreement == 1.0
    assert onnx.accuracy.parity.reference.startswith("digits.onnx")


def test_report_json_round_trip_and_html(build_report, tmp_path):
    path = build_report.save_json(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    for key in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "max_ms", "std_ms", "runs", "threads", "peak_rss_bytes"):
        assert all(r[key] is not None for r in data["results"]), key
    assert ProfileReport.load(path) == build_report
    html = build_report.save_html(tmp_path / "r.html").read_text()
    assert html.count("<svg") >= 2 + 3 and "Softmax" in html and "<script" not in html and "https://" not in html
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):  # every plot is well-formed inline SVG
        ElementTree.fromstring(svg)


def test_cli_profile_writes_json_and_exits_0(artifacts, tmp_path):
    out = tmp_path / "result.json"
    result = CliRunner().invoke(main, ["profile", str(artifacts["onnx"]), "--runs", "20", "--min-time", "0.05",
                                       "--op-runs", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())["results"][0]
    assert data["runs"] >= 20 and data["precision"] == "fp32" and data["ops"] == []


def test_stats_summary_percentiles():
    stats = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (stats.median_ms, stats.min_ms, stats.max_ms, stats.mean_ms) == (3.0, 1.0, 100.0, 22.0)
    assert stats.p90_ms == pytest.approx(61.6) and stats.p99_ms == pytest.approx(96.16)


# -- bad input and faults ------------------------------------------------------------------------------


def test_corrupt_artifact_is_a_failed_result_with_the_reason(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x07" * 200)
    report = profile(broken, **FAST)
    result = report.results[0]
    assert result.status == "failed" and "LiteRT cannot load broken.tflite" in result.error and report.partial
    cli = CliRunner().invoke(main, ["profile", str(broken), "--runs", "5", "--min-time", "0"])
    assert cli.exit_code == 1 and "LiteRT cannot load" in cli.output


def test_not_an_artifact_is_a_user_error(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    cli = CliRunner().invoke(main, ["profile", str(text)])
    assert cli.exit_code == 2 and "notes.onnx is not an artifact edgekit runs (by its content" in cli.output
    cli = CliRunner().invoke(main, ["profile", str(tmp_path / "missing.tflite")])
    assert cli.exit_code == 2 and "artifact not found" in cli.output


def test_dataset_that_does_not_fit_the_model(artifacts, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 32), np.float32), y=np.zeros(4, np.int64))
    result = profile(artifacts["onnx"], dataset=bad, **FAST).results[0]
    assert "has shape (1, 32), the model expects (1, 64)" in result.error
    assert result.status == "partial" and result.runs >= 30 and result.accuracy is None  # timing kept, labelled partial
    np.savez(bad, x=np.zeros((4, 64), np.float32))
    result = profile(artifacts["onnx"], dataset=bad, **FAST).results[0]
    assert "has no labels" in result.error


def test_missing_accelerator_is_named_not_run_on_cpu(artifacts):
    report = profile(artifacts["build"], device="local:gpu", **FAST)
    onnx, openvino = report.result("onnx"), report.result("openvino")
    assert onnx.status == openvino.status == "failed"
    assert "execution provider CUDAExecutionProvider is not available" in onnx.error and "CPUExecutionProvider" in onnx.hint
    assert "OpenVINO device GPU is not available" in openvino.error
    cli = CliRunner().invoke(main, ["profile", str(artifacts["onnx"]), "--device", "pi5.local"])
    assert cli.exit_code == 2 and "unknown device" in cli.output


def test_timeout_keeps_the_runs_measured_so_far(artifacts):
    result = profile(artifacts["onnx"], runs=10, min_seconds=60, max_runs=1_000_000, warmup=0, op_profile_runs=0,
                     timeout=2).results[0]
    assert result.status == "partial" and result.stopped_by == "deadline" and "cut short" in result.error
    assert result.runs > 10 and result.median_ms is not None


def test_profile_api_and_cli_load_no_framework():
    import subprocess
    import sys

    code = ("import sys, edgekit; edgekit.profile; from edgekit.cli import main; "
            "print([m for m in ('tensorflow', 'torch', 'keras', 'openvino', 'onnxruntime', 'onnx') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_labelled_datasets_npz_by_input_name_and_class_folders(tmp_path):
    from PIL import Image

    from edgekit.errors import DataError
    from edgekit.profiling.accuracy import load_labelled
    from edgekit.specs import TensorSpec

    spec = (TensorSpec(name="image", shape=(1, 8, 8, 1), dtype="float32"),)
    for label, name in enumerate(("cat", "dog")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for index in range(2 + label):
            Image.fromarray(np.full((16, 16), 60 * label + index, np.uint8)).save(tmp_path / "imgs" / name / f"{index}.png")
    feeds, labels = load_labelled(tmp_path / "imgs", spec)
    assert labels.tolist() == [0, 0, 1, 1, 1] and feeds[4]["image"].shape == (1, 8, 8, 1)
    assert feeds[3]["image"].max() == pytest.approx(61 / 255)
    np.savez(tmp_path / "named.npz", image=np.zeros((3, 8, 8, 1), np.float32), labels=np.arange(3))
    feeds, labels = load_labelled(tmp_path / "named.npz", spec)
    assert len(feeds) == 3 and labels.tolist() == [0, 1, 2]
    np.savez(tmp_path / "float_labels.npz", x=np.zeros((3, 8, 8, 1), np.float32), y=np.zeros(3))
    with pytest.raises(DataError, match="labels must be a 1-D integer array"):
        load_labelled(tmp_path / "float_labels.npz", spec)
    np.savez(tmp_path / "short.npz", x=np.zeros((3, 8, 8, 1), np.float32), y=np.arange(2))
    with pytest.raises(DataError, match="3 samples but 2 labels"):
        load_labelled(tmp_path / "short.npz", spec)


def test_devices_lists_runtimes_and_accelerators():
    result = CliRunner().invoke(main, ["devices", "--scan", "0", "--json"])
    assert result.exit_code == 0, result.output
    host = json.loads(result.output)["host"]
    assert "CPUExecutionProvider" in host["accelerators"]["onnx"] and "CPU" in host["accelerators"]["openvino"]
    assert host["accelerators"]["tflite"] == ["xnnpack"] and host["cpu_count"] >= 1


def test_agent_refuses_a_short_token(tmp_path):
    short = tmp_path / "token.txt"
    short.write_text("secret")
    result = CliRunner().invoke(main, ["agent", "--token-file", str(short), "--port", "0"])
    assert result.exit_code == 2 and "shorter than 16 characters" in result.output


def test_affinity_is_applied_and_reported(artifacts):
    result = profile(artifacts["onnx"], affinity=(0,), **FAST).results[0]
    assert result.affinity == (0,) and result.status == "complete"
    result = profile(artifacts["onnx"], affinity=(4096,), **FAST).results[0]
    assert result.status == "failed" and "cannot pin the measuring process to cores [4096]" in result.error
    cli = CliRunner().invoke(main, ["profile", str(artifacts["onnx"]), "--runs", "0"])
    assert cli.exit_code == 2 and "profiling setting min_runs" in cli.output


def test_progress_is_typed_and_cancel_stops_the_run_promptly(artifacts):
    import threading
    import time

    from edgekit import ProgressEvent
    from edgekit.errors import Cancelled

    cancel = threading.Event()
    seen: list[ProgressEvent] = []
    cancelled_at: list[float] = []

    def on_progress(event: ProgressEvent) -> None:
        seen.append(event)
        if event.stage == "timing:digits.onnx" and not cancel.is_set():
            cancelled_at.append(time.monotonic())
            cancel.set()

    with pytest.raises(Cancelled, match="profiling digits.onnx was cancelled"):
        profile(artifacts["onnx"], runs=10, min_seconds=60, op_profile_runs=0, progress=on_progress, cancel=cancel)
    assert time.monotonic() - cancelled_at[0] < 2.0  # the child is killed, not waited for (60 s of timed runs)
    assert all(isinstance(e, ProgressEvent) and 0.0 <= e.fraction <= 1.0 for e in seen)
    assert seen[0].stage == "load:digits.onnx"
    with pytest.raises(Cancelled, match="profiling was cancelled"):
        profile(artifacts["onnx"], runs=10, cancel=cancel)  # already set: nothing starts
