"""The agent on a hostile network, for real over loopback: rebinding Host and Origin headers, slow clients,
lying lengths, disconnects mid-upload, bad names and tokens, 100 concurrent clients, IPv6, TLS pinning, bad
options; and after all of it the agent still measures a job as a local run does."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import threading
import time

import pytest
from agent_harness import TOKEN, read_reply, request_bytes, send_raw, start_agent, wait_until
from click.testing import CliRunner

from edgekit.agent.client import AgentClient
from edgekit.profiling import profile
from edgekit.profiling.local import ProfilingError

READ_TIMEOUT = 2.0
MAX_CONNECTIONS = 16
SLOW_HEADERS = MAX_CONNECTIONS - 4  # slow clients count as connections until cut off: leave room for the uploads
FAST = {"runs": 30, "min_seconds": 0.1, "warmup": 3, "op_profile_runs": 5}


@pytest.fixture(scope="module")
def artifacts(agent_artifacts):
    return agent_artifacts


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    agent = start_agent(tmp_path_factory.mktemp("hostile-agent"), "--read-timeout", str(READ_TIMEOUT),
                        "--max-connections", str(MAX_CONNECTIONS), "--max-upload-mb", "2")
    assert wait_until(lambda: send_raw(agent, request_bytes(agent)).status == 200, 10)
    agent.baseline = (agent.threads(), agent.fds())
    yield agent
    agent.stop()


def job_header(name: str, data: bytes, fmt: str = "onnx") -> bytes:
    header = json.dumps({"format": fmt, "main": name,
                         "files": [{"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}).encode()
    return len(header).to_bytes(8, "big") + header


def post_job(agent, body: bytes, length: int | None = None, **headers) -> bytes:
    return request_bytes(agent, "POST", "/jobs", headers={"Content-Length": str(len(body) if length is None else length),
                                                         **headers}) + body


# -- who may ask ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
                                  "localhost:1", "[::2]:{port}", "127.0.0.1:{port}:1"])
def test_a_foreign_host_is_refused_with_403_before_the_token(agent, host):
    host = host.format(port=agent.port)
    for auth in (False, True):  # 403 with or without a token: the token is never looked at
        reply = send_raw(agent, request_bytes(agent, headers={"Host": host}, auth=auth))
        assert reply.status == 403, (host, reply)
        assert "not one this agent answers to" in json.loads(reply.body)["error"]


def test_loopback_names_with_the_agent_port_are_allowed(agent):
    for host in (f"127.0.0.1:{agent.port}", f"localhost:{agent.port}", f"[::1]:{agent.port}", "localhost", "LOCALHOST."):
        assert send_raw(agent, request_bytes(agent, headers={"Host": host})).status == 200, host
    assert send_raw(agent, b"GET /info HTTP/1.0\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n").status == 403


def test_a_foreign_origin_is_refused_and_no_cors_header_is_ever_sent(agent):
    replies = []
    for origin in ("http://evil.example", f"http://evil.example:{agent.port}", "null", f"http://localhost:{agent.port + 1}",
                   f"https://localhost:{agent.port}.evil.example", "file://"):
        reply = send_raw(agent, request_bytes(agent, headers={"Origin": origin}))
        assert reply.status == 403 and "origin" in json.loads(reply.body)["error"], origin
        replies.append(reply)
    preflight = send_raw(agent, request_bytes(agent, "OPTIONS", "/jobs", auth=False, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}))
    assert preflight.status == 403
    same_origin = send_raw(agent, request_bytes(agent, headers={"Origin": f"http://localhost:{agent.port}"}))
    assert same_origin.status == 200
    for reply in (*replies, preflight, same_origin):
        assert not [h for h in reply.headers if h.startswith("access-control-")]


@pytest.mark.parametrize("authorization, status", [(TOKEN, 401), (f"Basic {TOKEN}", 401), (f"Token {TOKEN}", 401),
                                                   ("Bearer", 401), ("Bearer not-the-token-at-all", 401),
                                                   (f"Bearer {TOKEN}x", 401), (f"bearer {TOKEN}", 200)])
def test_only_a_bearer_token_is_accepted(agent, authorization, status):
    reply = send_raw(agent, request_bytes(agent, auth=False, headers={"Authorization": authorization}))
    assert reply.status == status
    if status == 401:
        assert reply.headers["www-authenticate"].startswith("Bearer")


def test_the_client_sends_a_bearer_header_and_a_wrong_token_is_refused(agent):
    assert AgentClient(agent.url, token=TOKEN).info_dict()["agent"] == "edgekit"
    with pytest.raises(ProfilingError, match="refused the token"):
        AgentClient(agent.url, token="not-the-token-at-all").info_dict()


# -- slow and lying clients ----------------------------------------------------------------------------------


def _trickle(agent, first: bytes, then: bytes, every: float, results: list, index: int) -> None:
    """Send ``first``, then ``then`` one byte at a time every ``every`` seconds until the agent closes."""
    started = time.monotonic()
    with socket.create_connection((agent.host, agent.port), timeout=20) as sock:
        sock.sendall(first)
        try:
            for byte in then:
                time.sleep(every)
                sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        results[index] = read_reply(sock, started, timeout=20)


@pytest.mark.slow
def test_slow_headers_and_bodies_are_cut_off_and_hold_nothing(agent, artifacts):
    data = artifacts["onnx"].read_bytes()
    clients = []
    for _ in range(SLOW_HEADERS):  # slow-loris headers: a byte every 0.5 s, no token ever arrives
        clients.append((b"GET /info HTTP/1.1\r\n", b"X-Slow: " + b"a" * 40, 0.5))
    for _ in range(2):  # an authenticated upload trickling a byte every second (under the pause limit, too slow)
        body = job_header("digits.onnx", data) + data
        clients.append((post_job(agent, b"", length=len(body)) + body[:8], body[8:40], 1.0))
    clients.append((b"POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nxx", b"", 0))  # no token
    results: list = [None] * len(clients)
    threads = [threading.Thread(target=_trickle, args=(agent, *client, results, i)) for i, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    held = agent.fds() - agent.baseline[1]  # the agent holds them for now...
    for thread in threads:
        thread.join(timeout=30)
    headers, uploads, no_token = results[:SLOW_HEADERS], results[SLOW_HEADERS:-1], results[-1]
    assert held >= SLOW_HEADERS
    assert all(r.status == 408 and READ_TIMEOUT - 0.3 < r.seconds < READ_TIMEOUT + 2 for r in headers), headers
    assert all(r.status == 408 and b"stalled" in r.body and r.seconds < 2 * READ_TIMEOUT + 3 for r in uploads), uploads
    assert no_token.status == 401 and no_token.seconds < 3  # refused on its headers; its body never read
    assert wait_until(lambda: agent.fds() <= agent.baseline[1] + 2, 5), agent.fds()  # ...and then holds nothing
    assert agent.threads() <= agent.baseline[0] + 2
    assert agent.upload_folders() == []


@pytest.mark.parametrize("ending", ["close", "stall"])
def test_a_lying_content_length_leaves_no_folder_and_no_partial_file(agent, artifacts, ending):
    data = artifacts["onnx"].read_bytes()
    body = job_header("digits.onnx", data) + data
    started = time.monotonic()
    with socket.create_connection((agent.host, agent.port), timeout=20) as sock:
        sock.sendall(post_job(agent, body[: len(body) // 2], length=len(body)))
        assert wait_until(lambda: len(agent.upload_folders()) == 1, 5)  # the upload is under way, streamed to disk
        folder = agent.tmp / agent.upload_folders()[0]
        assert wait_until(lambda: [p.name for p in folder.iterdir()] == ["digits.onnx"], 5)
        if ending == "close":  # a disconnect mid-upload
            sock.close()
        else:
            reply = read_reply(sock, started)
            assert reply.status == 408 and f"{len(body) // 2} of {len(body)} bytes" in json.loads(reply.body)["error"]
            assert reply.seconds < READ_TIMEOUT + 1.5
    assert wait_until(lambda: agent.upload_folders() == [], 3)
    assert not folder.exists()


def test_uploads_beyond_max_uploads_are_refused_with_503(agent, artifacts):
    data = artifacts["onnx"].read_bytes()
    header = job_header("digits.onnx", data)
    stalled = [socket.create_connection((agent.host, agent.port), timeout=20) for _ in range(2)]  # --max-uploads 2
    try:
        for sock in stalled:
            sock.sendall(post_job(agent, header + data[:10], length=len(header) + len(data)))
        assert wait_until(lambda: len(agent.upload_folders()) == 2, 5)
        reply = send_raw(agent, post_job(agent, header + data))
        assert reply.status == 503 and reply.headers["retry-after"] == "5"
        assert "too many uploads at once" in json.loads(reply.body)["error"]
    finally:
        for sock in stalled:
            sock.close()
    assert wait_until(lambda: agent.upload_folders() == [], 3)


def test_bodies_that_do_not_fit_are_refused_up_front(agent):
    reply = send_raw(agent, request_bytes(agent, "POST", "/jobs", headers={"Content-Length": str(3 << 20)}))
    assert reply.status == 413 and "over the agent's limit of 2097152" in json.loads(reply.body)["error"]
    reply = send_raw(agent, request_bytes(agent, "POST", "/jobs", headers={"Transfer-Encoding": "chunked"}) + b"0\r\n\r\n")
    assert reply.status == 411
    reply = send_raw(agent, request_bytes(agent, "POST", "/jobs"))
    assert reply.status == 411
    header = job_header("m.onnx", b"abc")
    reply = send_raw(agent, post_job(agent, header + b"abcdef", length=len(header) + 6))  # sizes do not add up
    assert reply.status == 400 and "does not match the sizes" in json.loads(reply.body)["error"]
    reply = send_raw(agent, post_job(agent, header + b"abd"))
    assert reply.status == 400 and "does not match its sha256" in json.loads(reply.body)["error"]
    assert agent.upload_folders() == []


def test_the_client_reports_the_agents_size_limit(agent, tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((1024, 1024), np.float32), "w")  # 4 MiB, over the agent's 2
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "big.onnx"))
    with pytest.raises(ProfilingError, match=r"refused the request \(413\).*over the agent's limit of 2097152"):
        profile(tmp_path / "big.onnx", device=agent.url, token=TOKEN, runs=5, min_seconds=0.01, op_profile_runs=0)
    assert agent.upload_folders() == []


@pytest.mark.parametrize("name", ["m.onnx\n", "m.onnx\r", "../m.onnx", "a/b.onnx", "a\\b.onnx", "m\x00.onnx", "..",
                                  ".m.onnx", "m\t.onnx", "m .onnx", "é.onnx", "x" * 129, "/etc/passwd", "m..onnx"])
def test_file_names_must_be_one_safe_component(agent, name):
    reply = send_raw(agent, post_job(agent, job_header(name, b"abc") + b"abc"))
    assert reply.status == 400 and "plain name" in json.loads(reply.body)["error"], reply
    assert agent.upload_folders() == []


# -- many clients ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hundred_concurrent_clients_are_answered_or_refused_with_503(agent):
    count, ready = 100, threading.Barrier(101)
    replies: list = [None] * count
    peak = {"threads": 0, "fds": 0}

    def client(index: int) -> None:
        started = time.monotonic()
        with socket.create_connection((agent.host, agent.port), timeout=20) as sock:
            ready.wait(timeout=20)
            sock.sendall(request_bytes(agent))
            replies[index] = read_reply(sock, started)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=20)
    while any(t.is_alive() for t in threads):
        peak = {"threads": max(peak["threads"], agent.threads()), "fds": max(peak["fds"], agent.fds())}
        time.sleep(0.02)
    statuses = [r.status for r in replies]
    assert statuses.count(200) + statuses.count(503) == count, statuses  # no reset, no silence
    assert statuses.count(503) >= count - MAX_CONNECTIONS * 3  # over --max-connections: refused, not queued
    assert all(r.seconds < 10 for r in replies)
    assert all(b"Service Unavailable" in r.body for r in replies if r.status == 503)
    assert send_raw(agent, request_bytes(agent)).status == 200
    assert peak["threads"] <= agent.baseline[0] + 4 and peak["fds"] <= agent.baseline[1] + count + 4
    assert wait_until(lambda: agent.fds() <= agent.baseline[1] + 2, 5)


@pytest.mark.slow
def test_a_flood_of_idle_connections_is_capped(agent):
    cap = MAX_CONNECTIONS + 128  # --max-connections plus a listen backlog's worth
    sockets = []
    try:
        for _ in range(cap + 60):
            sockets.append(socket.create_connection((agent.host, agent.port), timeout=5))
        time.sleep(0.3)
        held = agent.fds() - agent.baseline[1]
        closed = 0
        for sock in sockets[-60:]:  # the ones over the cap were closed at once
            sock.settimeout(0.2)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert cap - 20 <= held <= cap + 3 and closed >= 50, (held, closed)
    finally:
        for sock in sockets:
            sock.close()
    assert wait_until(lambda: agent.fds() <= agent.baseline[1] + 2, 5)


# -- bad options -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--host", "999.1.1.1"], "is not an IP address or host name"),
    (["--host", "no-such-host.invalid"], "does not resolve"),
    (["--host", "192.0.2.123"], "is not an address of this machine"),
    (["--max-upload-mb", "-1"], "--max-upload-mb -1 is not a size"),
    (["--max-upload-mb", "0"], "--max-upload-mb 0 is not a size"),
    (["--max-upload-mb", "nan"], "--max-upload-mb nan is not a size"),
    (["--port", "-1"], "--port -1"),
    (["--port", "65536"], "--port 65536"),
    (["--read-timeout", "0"], "--read-timeout 0"),
    (["--max-connections", "0"], "--max-connections 0"),
    (["--max-uploads", "-3"], "--max-uploads -3"),
    (["--allow-host", "evil example"], "--allow-host 'evil example' is not a host name"),
])
def test_bad_agent_options_exit_2_with_a_message_and_a_hint(tmp_path, args, message):
    from edgekit.cli import main

    (tmp_path / "token").write_text(TOKEN)
    result = CliRunner().invoke(main, ["agent", "--token-file", str(tmp_path / "token"), *args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0] and lines[1].startswith("hint: ") and len(lines) == 2
    assert "listening" not in result.output and "Traceback" not in result.output


def test_a_port_in_use_exits_2_without_a_traceback(tmp_path, agent):
    import subprocess
    import sys

    (tmp_path / "token").write_text(TOKEN)
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "agent", "--port", str(agent.port), "--token-file",
                           str(tmp_path / "token")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[0] == f"error: port {agent.port} on 127.0.0.1 is already in use"
    assert done.stderr.splitlines()[1].startswith("hint: ") and "Traceback" not in done.stderr


def test_a_short_or_unprintable_token_is_refused(tmp_path):
    from edgekit.cli import main

    for token, message in (("short", "shorter than 16"), ("a token with spaces inside", "cannot go in an HTTP header")):
        (tmp_path / "token").write_text(token)
        result = CliRunner().invoke(main, ["agent", "--port", "0", "--token-file", str(tmp_path / "token")])
        assert result.exit_code == 2 and message in result.output


# -- IPv6, TLS, shutdown ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ipv6_loopback(tmp_path, artifacts):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    agent = start_agent(tmp_path, host="::1")
    try:
        assert agent.url.startswith("agent://[::1]:")
        assert AgentClient(agent.url, token=TOKEN).info_dict()["agent"] == "edgekit"
        report = profile(artifacts["onnx"], device=agent.url, token=TOKEN, runs=10, min_seconds=0.05, op_profile_runs=0)
        assert report.results[0].status == "complete" and report.results[0].runs >= 10
        assert send_raw(agent, request_bytes(agent, headers={"Host": f"evil.example:{agent.port}"})).status == 403
    finally:
        assert agent.stop() == 0


@pytest.mark.slow
def test_tls_with_a_pinned_certificate(tmp_path, artifacts):
    from edgekit.agent.discovery import browse_details
    from edgekit.agent.tls import ensure_certificate
    from edgekit.cli import main

    state = tmp_path / "state"
    agent = start_agent(tmp_path / "a", "--tls", "--state-dir", str(state), "--announce", lines=2)
    try:
        assert agent.url.startswith("https://127.0.0.1:")
        fingerprint = agent.lines[1].strip().rsplit(" ", 1)[1]
        assert len(fingerprint) == 95 and fingerprint.count(":") == 31
        assert stat.S_IMODE(os.stat(state / "agent-key.pem").st_mode) == 0o600
        assert AgentClient(agent.url, token=TOKEN, fingerprint=fingerprint).info_dict()["agent"] == "edgekit"
        wrong = "AA" + fingerprint[2:]
        with pytest.raises(ProfilingError, match="presented a different certificate.*nothing was sent"):
            AgentClient(agent.url, token=TOKEN, fingerprint=wrong).info_dict()
        with pytest.raises(ProfilingError, match="does not trust"):
            AgentClient(agent.url, token=TOKEN).info_dict()
        with pytest.raises(ProfilingError, match="needs an https:// agent"):
            AgentClient(agent.url.replace("https://", "agent://"), token=TOKEN, fingerprint=fingerprint)
        with pytest.raises(ProfilingError, match="did not answer|no edgekit agent answers"):  # plain HTTP to a TLS agent
            AgentClient(agent.url.replace("https://", "agent://"), token=TOKEN).info_dict()
        out = tmp_path / "tls.json"
        args = ["profile", str(artifacts["onnx"]), "--agent", agent.url, "--runs", "20", "--min-time", "0.05", "--op-runs", "0"]
        pinned = ["--agent-fingerprint", fingerprint.replace(":", "").lower(), "--json", str(out)]
        result = CliRunner().invoke(main, [*args, *pinned], env={"EDGEKIT_AGENT_TOKEN": TOKEN})
        assert result.exit_code == 0, result.output
        measured = json.loads(out.read_text())["results"][0]
        assert measured["status"] == "complete" and measured["runs"] >= 20 and measured["device"] == agent.url
        result = CliRunner().invoke(main, [*args, "--agent-fingerprint", wrong], env={"EDGEKIT_AGENT_TOKEN": TOKEN})
        assert result.exit_code == 2 and "presented a different certificate" in result.output
        announced = [a for a in browse_details(1.5, interfaces=["127.0.0.1"]) if a["url"] == agent.url]
        assert announced and announced[0]["tls"] == "1" and announced[0]["fingerprint"] == fingerprint.replace(":", "").lower()
    finally:
        agent.stop()
    assert ensure_certificate(state, ["127.0.0.1"])[2] == fingerprint  # kept in the state folder and reused
    (state / "agent-cert.pem").write_text("not a certificate")
    assert ensure_certificate(state, ["127.0.0.1"])[2] != fingerprint  # a damaged one is replaced


@pytest.mark.slow
def test_shutdown_stops_the_job_and_removes_every_upload_folder(tmp_path, artifacts):
    (tmp_path / "tmp").mkdir()
    stale = tmp_path / "tmp" / "edgekit-agent-999999999-left"  # left by an agent that was killed
    stale.mkdir()
    agent = start_agent(tmp_path, "--read-timeout", "20")
    try:
        assert not stale.exists()
        running = threading.Thread(target=profile, args=(artifacts["onnx"],), daemon=True, kwargs={
            "device": agent.url, "token": TOKEN, "runs": 10, "min_seconds": 60, "op_profile_runs": 0})
        running.start()
        assert wait_until(lambda: len(agent.children()) == 1, 20)  # the measuring child runs
        child = agent.children()[0]
        data = artifacts["onnx"].read_bytes()
        header = job_header("digits.onnx", data)
        with socket.create_connection((agent.host, agent.port), timeout=20) as stalled:
            stalled.sendall(post_job(agent, header + data[:100], length=len(header) + len(data)))
            assert wait_until(lambda: len(agent.upload_folders()) == 2, 5)  # the job's folder and the stalled upload's
            started = time.monotonic()
            assert agent.stop(signal.SIGTERM) == -signal.SIGTERM
        assert time.monotonic() - started < 5
        assert agent.upload_folders() == [] and not os.path.exists(f"/proc/{child}")
        running.join(timeout=10)
    finally:
        agent.stop(signal.SIGKILL)


def test_after_all_of_it_the_agent_measures_a_job_as_a_local_run_does(agent, artifacts):
    remote = profile(artifacts["openvino"], device=agent.url, token=TOKEN, dataset=artifacts["dataset"], **FAST)
    local = profile(artifacts["openvino"], dataset=artifacts["dataset"], **FAST)
    assert not remote.partial and remote.host.hostname == local.host.hostname
    r, here = remote.results[0], local.results[0]
    assert r.status == "complete" and r.runs >= 30 and r.ops and r.device == agent.url
    assert r.accuracy.accuracy == here.accuracy.accuracy == pytest.approx(artifacts["expected_accuracy"], abs=0.006)
    assert r.accuracy.samples == here.accuracy.samples == 200 and r.size_bytes == here.size_bytes
    assert {op.name for op in r.ops} == {op.name for op in here.ops}
    assert 0.2 < r.median_ms / here.median_ms < 5
    assert agent.upload_folders() == [] and agent.process.poll() is None
    assert agent.threads() <= agent.baseline[0] + 2
