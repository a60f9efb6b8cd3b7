"""The Runner contract against the agent runner: every contract test of every local runner, run again with the
model on a real ``edgekit agent`` on loopback (``open_runner(..., agent=URL, token=...)``), plus what only a
remote runner has: sessions loaded once and shared, closed by their last user, and arrays checked on arrival."""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import zipfile

import numpy as np
import pytest
from agent_harness import TOKEN, start_agent

from edgekit import open_runner
from edgekit.agent.wire import body
from edgekit.errors import ProfilingError

from . import models
from . import test_executorch_runner as executorch_contract
from . import test_runner_contract as contract


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    agent = start_agent(tmp_path_factory.mktemp("contract-agent"), "--max-upload-mb", "4")
    yield agent
    agent.stop()


class AgentContract:
    """The same contract with the model on the agent; ``runtime`` names the device's runtime."""

    @pytest.fixture(autouse=True)
    def _on_agent(self, agent):
        self.agent = agent

    def open(self, path, **options):
        return open_runner(path, self.fmt, runtime=self.runtime, agent=self.agent.url, token=TOKEN, **options)


class TestAgentLiteRt(AgentContract, contract.TestLiteRt):
    pass


class TestAgentOnnxRuntime(AgentContract, contract.TestOnnxRuntime):
    pass


class TestAgentOpenVinoOnIr(AgentContract, contract.TestOpenVinoOnIr):
    pass


class TestAgentOpenVinoOnOnnx(AgentContract, contract.TestOpenVinoOnOnnx):
    pass


@pytest.mark.slow
class TestAgentExecuTorch(AgentContract, executorch_contract.TestExecuTorch):
    def test_threads_size_the_process_wide_threadpool_or_are_refused_by_name(self, paths):
        """On the agent every session has its own process, hence its own threadpool: two sizes at once."""
        one, two = self.open(paths[0], threads=1), self.open(paths[0], threads=2)
        assert (one.threads, two.threads) == (1, 2) and one.key != two.key
        for runner in (one, two):
            np.testing.assert_array_equal(runner.run({"x": models.X, "k": models.K})["y"], models.Y)
            runner.close()


@pytest.fixture(scope="module")
def own_agent(tmp_path_factory):
    """An agent of its own (the contract tests above leave their sessions open, as a client that goes away does)."""
    agent = start_agent(tmp_path_factory.mktemp("session-agent"), "--max-upload-mb", "4")
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return models.onnx_model(tmp_path_factory.mktemp("agent-sessions") / "m.onnx")


def _post(agent, path: str, data: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(agent.host, agent.port, timeout=30)
    connection.request("POST", path, body=data, headers={"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Length": str(len(data))})
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, json.loads(text) if status != 200 else {}


def _get(agent, path: str) -> int:
    connection = http.client.HTTPConnection(agent.host, agent.port, timeout=30)
    connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_same_artifact_and_options_load_once_and_the_last_close_unloads_it(own_agent, onnx_path):
    agent = own_agent
    first = open_runner(onnx_path, agent=agent.url, token=TOKEN, runtime="agent")
    second = open_runner(onnx_path, agent=agent.url, token=TOKEN)
    threaded = open_runner(onnx_path, agent=agent.url, token=TOKEN, threads=1)
    assert first.key == second.key != threaded.key and len(first.key) == 64
    assert first.load_ms == second.load_ms  # the second one joined the loaded session: no second load
    assert len(agent.upload_folders()) == 2
    np.testing.assert_array_equal(second.run({"x": models.X, "k": models.K})["y"], models.Y)
    first.close()
    assert _get(agent, f"/sessions/{first.key}") == 200  # the second user still has it
    np.testing.assert_array_equal(second.run({"x": models.X, "k": models.K})["y"], models.Y)
    second.close()
    threaded.close()
    assert _get(agent, f"/sessions/{first.key}") == 404 and agent.upload_folders() == []
    with pytest.raises(ProfilingError, match=r"\(404\): no such session"):
        second.run({"x": models.X, "k": models.K})


def _npz(member: str, header: bytes, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, header + data)
    return buffer.getvalue()


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


# a zip that declares 8 MiB (deflated to a few KB) for an agent that takes 4 MiB; a pickle; a short array ...
@pytest.mark.parametrize(("payload", "message"), [
    (_npz("a0.npy", _npy_header("|O", (1,)), b"\x80\x04N."), "holds Python objects"),  # a pickle
    (_npz("a0.npy", _npy_header("<f4", (2 << 20,)), bytes(8 << 20)), "declares 8388736 bytes of arrays, over the 4194304"),
    (_npz("a0.npy", _npy_header("<f4", (64,)), bytes(16)), "is truncated"),
    (_npz("../a0.npy", _npy_header("<f4", (1,)), bytes(4)), "unexpected member '../a0.npy'"),
    (b"not a zip at all", "is not a readable .npz file"),
])
def test_arrays_are_checked_before_they_reach_the_model(own_agent, onnx_path, payload, message):
    agent = own_agent
    runner = open_runner(onnx_path, agent=agent.url, token=TOKEN)
    try:
        status, answer = _post(agent, f"/sessions/{runner.key}/run", body({"names": ["x"]}, payload))
        assert status == 400 and message in answer["error"], answer
        np.testing.assert_array_equal(runner.run({"x": models.X, "k": models.K})["y"], models.Y)  # still serving
    finally:
        runner.close()


def test_a_session_upload_is_checked_like_a_job(own_agent, onnx_path):
    agent = own_agent
    data = onnx_path.read_bytes()
    header = json.dumps({"format": "onnx", "main": "m.onnx", "threads": 0, "files": [
        {"name": "m.onnx", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}).encode()
    status, answer = _post(agent, "/sessions", len(header).to_bytes(8, "big") + header + data)
    assert status == 400 and "threads" in answer["error"]
    header = header.replace(b'"threads": 0', b'"threads": 1')
    status, answer = _post(agent, "/sessions", len(header).to_bytes(8, "big") + header + data[:-1] + b"\0")
    assert status == 400 and answer["error"] == "m.onnx does not match its sha256"
    assert agent.upload_folders() == []
