"""A tune study measured on two real agents on loopback; one agent stopped mid-study loses only its running trial."""
from __future__ import annotations

import signal

import pytest

import edgekit

pytestmark = pytest.mark.slow


def test_an_agent_that_disappears_loses_only_its_running_trial(tmp_path):
    from agent_harness import TOKEN, start_agent
    from tune_models import make_mlp

    paths = make_mlp(tmp_path / "model")
    first, second = start_agent(tmp_path / "a"), start_agent(tmp_path / "b")
    seen: list[str] = []

    def progress(event):
        if event.stage == "tune:measure" and first.url in event.message:
            seen.append(event.message)
            if len(seen) == 2:  # the second measurement on the first agent: the agent goes away under it
                first.stop(signal.SIGKILL)

    try:
        result = edgekit.tune(paths["model"], trials=6, devices=[first.url, second.url], token=TOKEN, formats=["onnx"],
                              calibration_data=paths["calibration"], validation_data=paths["validation"],
                              output_dir=tmp_path / "build", runs=10, min_seconds=0.1, warmup=2, progress=progress)
    finally:
        first.stop()
        second.stop()
    ended = [r for r in result.trials if r.state != "duplicate"]
    failed = [r for r in ended if r.state == "failed"]
    assert len(ended) == 6 and len(failed) == 1
    lost = failed[0]
    assert lost.reason.startswith(f"device gone ({first.url})") and "no edgekit agent answers" in lost.reason
    assert lost.build is not None and lost.build.status == "built"  # the build was fine: only the measurement was lost
    assert list(result.lost_devices) == [first.url]
    on_first = [r for r in ended if r.measurement and r.measurement.device == first.url and r.state == "complete"]
    on_second = [r for r in ended if r.measurement and r.measurement.device == second.url]
    assert len(on_first) == 1 and len(on_second) == 4 and all(r.state == "complete" for r in on_second)
    assert result.front
