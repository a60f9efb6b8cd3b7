"""The on-device agent, for real over loopback: token, uploads, streaming, disconnects, a dying agent."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from edgekit.agent.client import AgentClient
from edgekit.profiling import profile
from edgekit.errors import ProfilingError

TOKEN = "loopback-test-token-0123456789"
FAST = {"runs": 30, "min_seconds": 0.1, "warmup": 3, "op_profile_runs": 5}


def start_agent(tmp_path, *extra: str) -> tuple[subprocess.Popen, str]:
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    argv = [sys.executable, "-m", "edgekit.cli", "agent", "--port", "0", "--token-file", str(token_file), *extra]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, process.stderr.read()
    return process, f"agent://127.0.0.1:{line.strip().rsplit(':', 1)[1]}"


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def artifacts(agent_artifacts):
    return agent_artifacts


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    process, url = start_agent(tmp_path_factory.mktemp("agent-home"), "--max-upload-mb", "1")
    yield url
    stop(process)


def _raw(url: str, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> http.client.HTTPResponse:
    host, port = url.removeprefix("agent://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})})
    return connection.getresponse()


def test_remote_profile_matches_a_local_run(agent, artifacts):
    remote = profile(artifacts["build"], device=agent, token=TOKEN, dataset=artifacts["dataset"], **FAST)
    local = profile(artifacts["build"], dataset=artifacts["dataset"], **FAST)
    assert remote.host.hostname == local.host.hostname and not remote.partial
    for fmt in ("onnx", "openvino"):
        r, here = remote.result(fmt), local.result(fmt)
        assert r.device == agent and r.runs >= 30 and r.ops
        assert r.accuracy.accuracy == here.accuracy.accuracy == pytest.approx(artifacts["expected_accuracy"], abs=0.006)
        assert r.accuracy.dataset == "digits_test.npz"
        assert r.accuracy.parity.cosine > 0.99999 and "on this host" in r.accuracy.parity.reference
        assert 0.2 < r.median_ms / here.median_ms < 5  # same machine: same order of magnitude on a busy host
        assert r.peak_rss_bytes == pytest.approx(here.peak_rss_bytes, rel=0.3)


def test_agent_imports_no_tensorflow_or_torch(agent, artifacts):
    profile(artifacts["onnx"], device=agent, token=TOKEN, **FAST)
    info = AgentClient(agent, token=TOKEN).info_dict()
    assert info["heavy_modules_loaded"] == []
    assert set(info["host"]["accelerators"]) == {"tflite", "onnx", "openvino", "executorch"}


def test_wrong_or_missing_token_is_refused(agent, artifacts, monkeypatch):
    with pytest.raises(ProfilingError, match="refused the token"):
        profile(artifacts["onnx"], device=agent, token="not-the-token-at-all", **FAST)
    monkeypatch.delenv("EDGEKIT_AGENT_TOKEN", raising=False)
    with pytest.raises(ProfilingError, match="no agent token given"):
        profile(artifacts["onnx"], device=agent, **FAST)
    assert _raw(agent, "GET", "/info", headers={"Authorization": "Bearer x"}).status == 401


def test_no_agent_there(artifacts):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProfilingError, match="no edgekit agent answers at 127.0.0.1"):
        profile(artifacts["onnx"], device=f"agent://127.0.0.1:{port}", token=TOKEN, **FAST)


def test_upload_cap_and_invalid_jobs(agent):
    response = _raw(agent, "POST", "/jobs", body=b"", headers={"Content-Length": str(2 << 20)})
    assert response.status == 413 and "over the agent's limit" in json.loads(response.read())["error"]
    header = json.dumps({"format": "onnx", "main": "../evil.onnx",
                         "files": [{"name": "../evil.onnx", "size": 0, "sha256": "0" * 64}]}).encode()
    response = _raw(agent, "POST", "/jobs", body=len(header).to_bytes(8, "big") + header)
    assert response.status == 400 and "plain name" in json.loads(response.read())["error"]
    header = json.dumps({"format": "onnx", "main": "m.onnx", "files": [{"name": "m.onnx", "size": 3, "sha256": "0" * 64}],
                         "settings": {"threads": 1, "command": "rm -rf /"}}).encode()
    response = _raw(agent, "POST", "/jobs", body=len(header).to_bytes(8, "big") + header + b"abc")
    assert response.status == 400 and "invalid job" in json.loads(response.read())["error"]


def test_job_survives_a_client_that_disconnects(agent, artifacts):
    from edgekit.agent.client import _sha256
    from edgekit.agent.protocol import RemoteJob, Upload
    from edgekit.profiling.protocol import Settings

    path = artifacts["onnx"]
    data = path.read_bytes()
    header = RemoteJob(format="onnx", main=path.name, files=(Upload(name=path.name, size=len(data), sha256=_sha256(path)),),
                       settings=Settings(min_runs=10, min_seconds=1.0, max_runs=1_000_000, op_profile_runs=0))
    header = header.model_dump_json().encode()
    response = _raw(agent, "POST", "/jobs", body=len(header).to_bytes(8, "big") + header + data)
    job_id = json.loads(response.readline())["job"]
    response.close()  # the client goes away mid-run
    replay = [json.loads(line) for line in _raw(agent, "GET", f"/jobs/{job_id}")]
    assert replay[-1]["event"] == "done"
    timing = next(e for e in replay if e.get("name") == "timing")["value"]
    assert timing["stopped_by"] == "target" and timing["measured_seconds"] >= 1.0 and len(timing["latencies_ms"]) >= 10


def test_agent_that_dies_mid_run_leaves_labelled_partial_results(tmp_path, artifacts):
    process, url = start_agent(tmp_path)
    killed = threading.Event()

    def kill_when_timing(event):
        if event.stage.startswith("timing:") and not killed.is_set():
            killed.set()
            os.kill(process.pid, signal.SIGKILL)

    started = time.monotonic()
    report = profile(artifacts["onnx"], device=url, token=TOKEN, runs=10, min_seconds=30, op_profile_runs=0,
                     progress=kill_when_timing)
    process.wait()
    result = report.results[0]
    assert killed.is_set() and time.monotonic() - started < 25
    assert result.status == "failed" and "mid-run" in result.error and result.load_ms is not None and report.partial


def test_agent_announces_itself_with_zeroconf(tmp_path):
    from edgekit.agent.discovery import browse

    process, url = start_agent(tmp_path, "--announce")
    try:
        assert url in browse(2.0, interfaces=["127.0.0.1"])  # loopback only
    finally:
        stop(process)


def test_jobs_run_one_at_a_time(agent, artifacts):
    stages: list[list[str]] = [[], []]
    reports = [None, None]

    def run(index: int) -> None:
        reports[index] = profile(artifacts["onnx"], device=agent, token=TOKEN, runs=10, min_seconds=0.5, max_runs=10**6,
                                 op_profile_runs=0, progress=lambda event: stages[index].append(event.stage.partition(":")[0]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None and not r.partial for r in reports)
    assert "queued" in stages[0] + stages[1]  # the later job waited instead of disturbing the first one's timing


def test_onnx_with_external_data_is_uploaded_with_it(agent, tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.eye(64, 10, dtype=np.float32) * 3, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "ext",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.onnx.data",
                    size_threshold=0)
    report = profile(tmp_path / "ext.onnx", device=agent, token=TOKEN, **FAST)
    result = report.results[0]
    assert result.status == "complete", result.error
    assert result.size_bytes == (tmp_path / "ext.onnx").stat().st_size + (tmp_path / "ext.onnx.data").stat().st_size


def test_cli_profile_through_the_agent_with_the_token_from_the_environment(agent, artifacts, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli import main

    out = tmp_path / "remote.json"
    args = ["profile", str(artifacts["openvino"]), "--device", agent, "--runs", "20", "--min-time", "0.05", "--json", str(out)]
    result = CliRunner().invoke(main, args, env={"EDGEKIT_AGENT_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["device"] == agent and data["results"][0]["runs"] >= 20 and data["results"][0]["accelerator"] == "CPU"
    result = CliRunner().invoke(main, args, env={"EDGEKIT_AGENT_TOKEN": "wrong-token-wrong-token"})
    assert result.exit_code == 2 and "refused the token" in result.output


def test_cancel_stops_a_remote_run_at_the_next_event(agent, artifacts):
    from edgekit.errors import Cancelled

    cancel = threading.Event()

    def on_progress(event):
        if event.stage.startswith("timing:"):
            cancel.set()

    started = time.monotonic()
    with pytest.raises(Cancelled, match="on the agent at .* was cancelled"):
        profile(artifacts["onnx"], device=agent, token=TOKEN, runs=10, min_seconds=30, op_profile_runs=0,
                progress=on_progress, cancel=cancel)
    assert time.monotonic() - started < 20  # not the 30 s of timed runs


def test_the_job_api_still_measures_a_whole_job_on_the_device(agent, artifacts):
    """``AgentClient.run_job`` (``POST /jobs``): the device runs the whole protocol in its child, as before."""
    from edgekit.profiling.artifacts import resolve_artifacts
    from edgekit.profiling.local import Job, ResultBuilder
    from edgekit.profiling.protocol import Settings

    ref = resolve_artifacts(artifacts["onnx"])[0]
    settings = Settings(min_runs=20, min_seconds=0.05, warmup_runs=2, op_profile_runs=3)
    builder = ResultBuilder({"artifact": str(ref.path), "format": "onnx", "size_bytes": ref.size_bytes, "device": agent})
    AgentClient(agent, token=TOKEN).run_job(Job(path=str(ref.path), format="onnx", settings=settings), ref, builder.feed)
    result = builder.result()
    assert result.status == "complete" and result.runs >= 20 and result.runtime == "onnxruntime"
    assert {op.type for op in result.ops} == {"Gemm", "Softmax"}  # ORT fuses MatMul + Add into Gemm
