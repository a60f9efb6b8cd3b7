"""A tune run killed with SIGKILL and started again: the same study continues, finished builds are not redone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _argv(paths: dict, out: Path) -> list[str]:
    return [sys.executable, "-m", "edgekit.cli", "tune", str(paths["model"]), "-c", str(paths["calibration"]),
            "--validation", str(paths["validation"]), "--out", str(out), "--format", "onnx", "--trials", "5",
            "--runs", "5", "--min-time", "0.1", "--warmup", "1", "--seed", "3"]


def test_a_killed_tune_run_resumes_the_same_study(tmp_path):
    from tune_models import make_mlp

    paths = make_mlp(tmp_path / "model")
    out = tmp_path / "build"
    builds = tmp_path / "build.tune" / "builds"
    first = subprocess.Popen(_argv(paths, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(builds.glob("*.outcome.json"))) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)  # the two builds of the trace, then the first trial of the search
    assert first.poll() is None, "the run ended before it could be killed"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    done_before = {p: p.stat().st_mtime_ns for p in builds.glob("*.outcome.json")}
    assert len(done_before) >= 3
    study = tmp_path / "build.tune" / "study.db"
    assert study.is_file()
    live = tmp_path / "build.tune" / "tune.json"  # written after every trial: what the killed run finished
    before = json.loads(live.read_text())["trials"] if live.is_file() else []

    second = subprocess.run(_argv(paths, out), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    result = json.loads((tmp_path / "build.tune" / "tune.json").read_text())
    ended = [t for t in result["trials"] if t["state"] in ("complete", "failed")]
    interrupted = [t for t in result["trials"] if t["state"] == "interrupted"]
    assert len(ended) == 5 and len(interrupted) <= 1
    final = {t["number"]: t for t in result["trials"]}
    assert all(final[t["number"]] == t for t in before)  # what ended before the kill is kept as it was
    assert all(p.stat().st_mtime_ns == t for p, t in done_before.items())  # finished builds were not built again
    cached = [t for t in ended if t["build"] and t["build"]["cached"]]
    assert len(cached) >= 2  # the trials of fp32 and plain int8 took the builds the killed run finished
    if interrupted:  # its configuration was asked again first
        again = [t for t in ended if t["number"] > interrupted[0]["number"]]
        assert again and again[0]["config"] == interrupted[0]["config"]
