"""RayExecutor on real local Ray clusters (loopback only): builds on CPU nodes, measurements on device nodes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.errors import ClusterError, TaskLostError
from edgekit.tune.executor import device_resource
from tune_ray import ray_tasks


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_local_ray_runs_two_workers_at_once_and_pins_the_device(agent_artifacts, tmp_path):
    from edgekit.tune.ray_executor import RayExecutor

    artifact = Path(agent_artifacts["onnx"]).read_bytes()
    with RayExecutor(num_cpus=2, devices=["local-cpu"]) as executor:
        assert executor.device_resources() == {device_resource("local-cpu"): 1.0}
        futures = [executor.submit(ray_tasks.measure_together, artifact, str(tmp_path), index, 2) for index in range(2)]
        results = [future.result(timeout=300) for future in futures]
        pinned = executor.submit(ray_tasks.measure, artifact, resources={device_resource("local-cpu"): 1}).result(timeout=300)
    assert results[0]["pid"] != results[1]["pid"]  # two workers, both started before either measured (the barrier)
    assert all(r["status"] == "complete" and r["runs"] >= 10 and r["median_ms"] > 0 for r in results)
    assert pinned["status"] == "complete" and pinned["runs"] >= 20


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_build_on_the_cpu_node_and_measure_on_the_device_node(two_nodes, digits_keras_file, digits):
    import ray

    from edgekit.tune.ray_executor import RayExecutor

    _, x_test, _, _ = digits
    with RayExecutor(two_nodes) as executor:
        nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
        built = executor.submit(ray_tasks.build_onnx, digits_keras_file.read_bytes(), x_test[:40]).result(timeout=600)
        measured = executor.submit(ray_tasks.measure, built["artifact"],
                                   resources={device_resource("bench-b"): 1}).result(timeout=300)
    assert len(nodes) == 2
    assert "node:__internal_head__" in nodes[built["node"]]  # the build ran on the head, the only CPU node
    assert device_resource("bench-b") in nodes[measured["node"]] and measured["node"] != built["node"]
    assert built["verdict"] == "passed" and built["samples"] == 40 and built["cosine"] > 0.9999
    assert built["artifact"][:64].count(b"\x00") < 64 and len(built["artifact"]) > 10_000
    assert measured["status"] == "complete" and measured["runs"] >= 20 and 0 < measured["median_ms"] < 100


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_builds_run_on_both_cpu_nodes_at_once(ray_head, two_nodes, agent_artifacts, tmp_path):
    from edgekit.tune.ray_executor import RayExecutor

    artifact = Path(agent_artifacts["onnx"]).read_bytes()
    second = ray_head.join([], num_cpus=1, log=tmp_path / "cpu-node.log")
    try:
        with RayExecutor(two_nodes) as executor:
            futures = [executor.submit(ray_tasks.measure_together, artifact, str(tmp_path), index, 2) for index in range(2)]
            results = [future.result(timeout=300) for future in futures]
    finally:
        second.stop()
    assert len({r["node"] for r in results}) == 2  # one CPU each: together means one on each node
    assert all(r["status"] == "complete" for r in results)


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_a_device_no_node_holds_fails_within_the_wait(two_nodes, agent_artifacts):
    from edgekit.tune.ray_executor import RayExecutor

    artifact = Path(agent_artifacts["onnx"]).read_bytes()
    with RayExecutor(two_nodes, device_wait=2.0) as executor:
        started = time.monotonic()
        future = executor.submit(ray_tasks.measure, artifact, resources={device_resource("pixel 7"): 1})
        with pytest.raises(ClusterError, match=r"no live node of the Ray cluster holds 'pixel_7' \(edgekit_device_pixel_7\)"):
            future.result(timeout=60)
        waited = time.monotonic() - started
        after = executor.submit(ray_tasks.measure, artifact, resources={device_resource("bench-b"): 1}).result(timeout=300)
    assert 2.0 <= waited < 15.0
    assert after["status"] == "complete"


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_cancelling_a_measurement_frees_its_device(two_nodes, agent_artifacts, tmp_path):
    from edgekit.tune.ray_executor import RayExecutor

    artifact = Path(agent_artifacts["onnx"]).read_bytes()
    flag = tmp_path / "measuring"
    with RayExecutor(two_nodes) as executor:
        endless = executor.submit(ray_tasks.measure, artifact, runs=1_000_000, min_seconds=600, started_flag=str(flag),
                                  resources={device_resource("bench-b"): 1})
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert time.monotonic() < deadline and not endless.done(), "the measurement never started"
            time.sleep(0.1)
        assert endless.cancel() and endless.cancelled()
        started = time.monotonic()
        after = executor.submit(ray_tasks.measure, artifact, resources={device_resource("bench-b"): 1}).result(timeout=300)
    assert after["status"] == "complete" and time.monotonic() - started < 120


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_a_killed_node_loses_only_its_task(ray_head, two_nodes, agent_artifacts, tmp_path):
    from edgekit.tune.ray_executor import RayExecutor

    artifact = Path(agent_artifacts["onnx"]).read_bytes()
    doomed = ray_head.join(["doomed"], log=tmp_path / "doomed.log")
    flag = tmp_path / "measuring"
    with RayExecutor(two_nodes, device_wait=5.0) as executor:
        lost = executor.submit(ray_tasks.measure, artifact, runs=1_000_000, min_seconds=120, started_flag=str(flag),
                               resources={device_resource("doomed"): 1})
        other = executor.submit(ray_tasks.measure, artifact, resources={device_resource("bench-b"): 1})
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert time.monotonic() < deadline and not lost.done(), "the doomed node never started its task"
            time.sleep(0.1)
        killed = time.monotonic()
        doomed.kill()
        with pytest.raises(TaskLostError, match="task measure was lost") as caught:
            lost.result(timeout=120)
        detected = time.monotonic() - killed
        survivor = other.result(timeout=300)
        again = executor.submit(ray_tasks.measure, artifact, resources={device_resource("bench-b"): 1}).result(timeout=300)
    assert "node it was running on is dead" in caught.value.message and caught.value.hint and detected < 60.0
    assert survivor["status"] == "complete" and again["status"] == "complete"


CONNECT = """
import sys
from edgekit.errors import ClusterError
from edgekit.tune.ray_executor import RayExecutor
try:
    RayExecutor(sys.argv[1]).shutdown()
    print("joined")
except ClusterError as exc:
    print(exc.message)
    print(exc.hint)
"""


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_a_client_with_a_wrong_token_is_refused(ray_head, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "RAY_AUTH_TOKEN": "a-wrong-token-0123456789abcdef01"}
    done = subprocess.run([sys.executable, "-c", CONNECT, ray_head.address], capture_output=True, text=True, timeout=180,
                          env=env)
    lines = done.stdout.splitlines()
    assert lines[:1] == ["cannot start or join 127.0.0.1:6379: Failed to connect to Ray cluster at 127.0.0.1:6379"], done.stdout
    assert "RAY_AUTH_TOKEN must be what `ray get-auth-token` prints" in lines[1]
    assert "InvalidAuthToken" in done.stderr  # what Ray logs while it retries


@pytest.mark.loopback_netns
def test_an_unreachable_address_is_a_clear_error():
    from edgekit.tune.ray_executor import RayExecutor

    started = time.monotonic()
    with pytest.raises(ClusterError, match="cannot reach the Ray cluster at 127.0.0.1:9") as caught:
        RayExecutor("127.0.0.1:9", connect_timeout=2.0)
    assert time.monotonic() - started < 10.0 and "ray-node --head" in caught.value.hint
    with pytest.raises(ClusterError, match="not a Ray cluster address"):
        RayExecutor("headnode")


def test_without_ray_the_error_names_the_extra():
    code = ("import sys; sys.modules['ray'] = None\n"
            "from edgekit.tune.ray_executor import RayExecutor\n"
            "from edgekit.errors import MissingDependencyError\n"
            "try:\n    RayExecutor()\nexcept MissingDependencyError as e:\n    print(e.message); print(e.hint)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["the Ray executor needs the Python module 'ray', which is not installed",
                                        "pip install 'edgekit[ray]'"]


def test_import_edgekit_and_cli_help_do_not_import_ray():
    code = ("import sys, edgekit, edgekit.tune.executor, edgekit.tune.ray_executor\nfrom edgekit.cli import main\n"
            "try:\n    main(['ray-node', '--help'])\nexcept SystemExit:\n    pass\nprint('RAY', 'ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "RAY False"
    assert "--device ID" in done.stdout


def test_ray_node_without_a_token_refuses_to_join(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RAY_AUTH_MODE": "token"}
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "ray-node", "--address", "127.0.0.1:6379", "--device", "x"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert "no Ray authentication token on this machine" in done.stderr and "RAY_AUTH_TOKEN" in done.stderr


def test_device_resources_are_plain_ray_resource_names():
    from edgekit.tune.ray_node import node_command

    command = node_command(head=False, address="10.0.0.5:6379", devices=["pixel 7", "rpi5"], num_cpus=0)
    assert command[command.index("--resources") + 1] == '{"edgekit_device_pixel_7": 1, "edgekit_device_rpi5": 1}'
    assert command[command.index("--address") + 1] == "10.0.0.5:6379" and "--block" in command
    assert command[-2:] == ["--num-cpus", "0"]


def test_a_head_without_a_token_makes_one_with_ray(tmp_path, monkeypatch):
    from edgekit.tune.ray_node import has_token, node_environment

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    assert not has_token()
    env = node_environment(head=True)
    token = (tmp_path / ".ray" / "auth_token").read_text()
    assert env["RAY_AUTH_MODE"] == "token" and len(token) >= 32 and has_token()
