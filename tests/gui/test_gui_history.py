"""The run history: a profiling run is kept with its reports, reopened, and follows the project file."""
from __future__ import annotations

from test_gui_status import _onnx_model


def test_a_profiling_run_is_kept_reopened_and_moves_with_the_project(window, qtbot, tmp_path):
    model = _onnx_model(tmp_path / "alpha.onnx", 3)
    profile = window.profile_view
    profile.set_artifacts([str(model)])
    profile.runs.setValue(5)
    profile.min_seconds.setValue(0.0)
    profile.warmup.setValue(1)
    profile.op_runs.setValue(0)
    with qtbot.waitSignal(profile.runner.succeeded, timeout=120_000):
        assert profile.run()
    measured = profile.results_list()[0]
    history = window.history_view
    assert [r.kind for r in history.shown] == ["profile"]
    run = history.shown[0]
    assert run.devices == ["local:cpu"] and run.model == "alpha.onnx" and run.summary.startswith("1 measurement(s), fastest ")

    profile.show_reports([])
    assert profile.results.rowCount() == 0
    history.reopen(0)
    assert window.stack.currentWidget() is profile and profile.results.rowCount() == 1
    assert profile.results_list()[0].median_ms == measured.median_ms and profile.results_list()[0].runs == measured.runs

    saved = window.save_project(str(tmp_path / "bench.edgekit.json"))
    assert history.history.root == tmp_path / "bench.history" and len(history.history.runs()) == 1
    history.compare_rows([0])
    assert history.error.message.text() == "choose two or more runs to compare"
    window.open_paths([str(saved)])
    assert [r.kind for r in window.history_view.shown] == ["profile"]
