"""Killed builds leave nothing behind: SIGKILL (of the CLI, of its process group) and SIGTERM at random points."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.kill_harness import kill

TRIALS = 20


@pytest.mark.slow
def test_random_kills_leave_no_process_no_staging_and_an_old_or_new_folder(tmp_path):
    summary = kill.run(TRIALS, seed=20, folder=tmp_path)
    failed = [r for r in summary["records"] if not r["passed"]]
    assert summary["trials"] == TRIALS and summary["passes"] == TRIALS, failed
    assert summary["survivors"] == 0 and summary["inconsistent_folders"] == 0
    assert {k: v["trials"] for k, v in summary["by_kind"].items()} == {"sigkill": 7, "sigkill-group": 7, "sigterm": 6}
    assert sum(r["workers_seen"] > 0 for r in summary["records"]) >= TRIALS // 2  # most kills hit a running worker


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sigkill", "sigkill-group"])
def test_a_worker_inside_a_long_openvino_step_dies_with_its_cli(tmp_path, kind):
    """A 5,000-Add chain keeps OpenVINO's converter busy for tens of seconds (the graph limit is raised to let
    it through): the worker must still be gone within seconds of its CLI."""
    from tests.test_limits import add_chain

    model = add_chain(tmp_path / "chain.onnx", 5000)
    args = kill.cli("convert", str(model), "-f", "openvino", "-p", "fp32", "-o", str(tmp_path / "out"),
                    "--graph-limit", "max_chain=10000")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, workers = time.monotonic() + 120, []
        while not workers and time.monotonic() < deadline:
            workers = kill.worker_children(process.pid)
            time.sleep(0.05)
        assert workers, "no worker started"
        time.sleep(8.0)  # into the conversion, which takes far longer than this
        assert process.poll() is None and all(kill.alive(w) for w in workers)
        os.kill(process.pid, signal.SIGKILL) if kind == "sigkill" else os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        gone_by = time.monotonic() + kill.WORKER_GONE_SECONDS
        while any(kill.alive(w) for w in workers) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not any(kill.alive(w) for w in workers)
    finally:
        for pid in [*kill.worker_children(process.pid), *(w for w in workers if kill.alive(w))]:
            os.kill(pid, signal.SIGKILL)
        process.kill()
