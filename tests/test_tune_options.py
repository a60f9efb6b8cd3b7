"""tune's options, the executor choice and plan files refused before any work, with message and hint."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import edgekit
from edgekit.errors import InvalidOptionError, MissingDependencyError
from edgekit.plan_file import MAX_PLAN_BYTES, read_plan_file
from edgekit.tune.choose import open_executor
from edgekit.tune.executor import LocalExecutor


def test_the_executor_factory(monkeypatch):
    pool = open_executor("local", max_workers=2)
    assert isinstance(pool, LocalExecutor) and pool.submit(pow, 2, 10, resources={"edgekit_device_x": 1}).result() == 1024
    pool.shutdown()
    with pytest.raises(InvalidOptionError, match="unknown executor 'dask'"):
        open_executor("dask")
    with pytest.raises(InvalidOptionError, match="an executor address is for executor='ray'"):
        open_executor("local", address="127.0.0.1:6379")
    monkeypatch.setitem(sys.modules, "edgekit.tune.ray_executor", None)  # an edgekit without the Ray executor
    with pytest.raises(MissingDependencyError, match="has no Ray executor") as caught:
        open_executor("ray")
    assert "[ray]" in caught.value.hint


def test_tune_refuses_bad_arguments_before_any_work(tmp_path):
    with pytest.raises(InvalidOptionError, match="invalid objectives \\['speed'\\]"):
        edgekit.tune(tmp_path, objectives=["speed"], output_dir=tmp_path / "b")
    with pytest.raises(InvalidOptionError, match="unknown constraint 'max_ms'"):
        edgekit.tune(tmp_path, constraints={"max_ms": 3}, output_dir=tmp_path / "b")
    with pytest.raises(InvalidOptionError, match="without repeats"):
        edgekit.tune(tmp_path, devices=["local:cpu", "local:cpu"], output_dir=tmp_path / "b")
    with pytest.raises(InvalidOptionError, match="tune takes a model file or folder") as caught:
        edgekit.tune(object(), output_dir=tmp_path / "b")
    assert "trials load it in workers" in caught.value.hint
    assert not (tmp_path / "b.tune").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "is not a readable plan"),
    (json.dumps({"schema_": "something/1"}).encode(), "is not an edgekit convert plan"),
    (json.dumps({"schema_": "edgekit.convert-plan/1", "model": {"path": "m", "sha256": "0"}}).encode(),
     "options: Field required"),
    (json.dumps({"schema_": "edgekit.convert-plan/1", "model": {"path": "/nonexistent/m.onnx", "sha256": "0"},
                 "options": {}}).encode(), "does not exist"),
])
def test_hostile_plan_files_are_refused(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(InvalidOptionError, match=message):
        read_plan_file(path)


def test_an_oversized_plan_is_refused_before_reading(tmp_path):
    path = tmp_path / "plan.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_PLAN_BYTES + 1)
    with pytest.raises(InvalidOptionError, match=f"is {MAX_PLAN_BYTES + 1} bytes, more than a plan can be"):
        read_plan_file(path)


def test_cli_errors_exit_2_with_message_and_hint(tmp_path):
    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgekit.cli", *argv], capture_output=True, text=True, timeout=120)

    done = run("tune")
    assert done.returncode == 2 and "edgekit tune needs a MODEL (or --select N)" in done.stderr and "Traceback" not in done.stderr
    done = run("tune", "--select", "0", "--out", str(tmp_path / "none"))
    assert done.returncode == 2 and "no tune run beside" in done.stderr
    (tmp_path / "plan.json").write_text("{}")
    done = run("convert", str(tmp_path / "plan.json"), "--plan", str(tmp_path / "plan.json"))
    assert done.returncode == 2 and "give either MODEL or --plan PLAN.json" in done.stderr
    done = run("tune", str(tmp_path / "plan.json"), "--constraint", "max_latency_ms=fast")
    assert done.returncode == 2 and "--constraint expects KEY=NUMBER" in done.stderr


def test_a_build_stopped_by_a_signal_is_not_cached_as_failed():
    """The words edgekit.worker uses for a converter killed by a signal mark the outcome as interrupted; a
    converter's own crash or a validation failure stays a cached failure."""
    from edgekit.tune.tasks import interrupted

    stopped = "route error: onnx/int8: the converter process crashed during convert (signal SIGTERM)"
    assert interrupted(stopped)
    assert interrupted("route error: tflite/int8: the converter process crashed during convert (signal SIGKILL)")
    assert not interrupted("route error: tflite/int8: the converter process crashed during convert (signal SIGSEGV)")
    assert not interrupted("validation failed: cosine 0.41 < 0.98")
    assert not interrupted(None)
