"""The Tune view driven offscreen: a real ONNX classifier tuned by ``edgekit.tune`` in the real job process,
trials arriving while it runs, the front highlighted, cancel and resume of the same study, a point promoted."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from edgekit.gui.jobs import REQUEST, Trial, TuneRequest, TuneSettings, decode, encode
from edgekit.gui.tune_plot import FRONT
from edgekit.gui.tune_view import FAILED_FOREGROUND, FRONT_BACKGROUND
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from PySide6.QtGui import QColor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tune_models import make_mlp  # noqa: E402


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return make_mlp(tmp_path_factory.mktemp("tune-gui-model"))


def _settings(mlp, out: Path, trials: int, seed: int = 3) -> TuneSettings:
    return TuneSettings(model=str(mlp["model"]), target="cpu-x86", formats=["onnx"], trials=trials, seed=seed,
                        calibration_data=str(mlp["calibration"]), validation_data=str(mlp["validation"]),
                        output_dir=str(out), runs=10, min_seconds=0.1, constraints={"min_accuracy": 0.9})


def _ended(view) -> list[int]:
    return [r.number for r in view.result.trials if r.state in ("complete", "failed")]


def _front_rows(view) -> list[int]:
    colour = QColor(FRONT_BACKGROUND)
    return [int(view.table.item(row, 0).text()) for row in range(view.table.rowCount())
            if view.table.item(row, 0).background().color() == colour]


@pytest.mark.slow
def test_trials_arrive_live_cancel_keeps_them_resume_continues_and_a_point_is_promoted(window, qtbot, mlp, tmp_path):
    view = window.tune_view
    window.show_view("Tune")
    out = tmp_path / "build"
    view.set_settings(_settings(mlp, out, trials=6))
    assert view.run()
    # the first trial is in the table and on the scatter while the study still runs
    qtbot.waitUntil(lambda: view.table.rowCount() > 0 and view.plot.drawn > 0, timeout=300_000)
    assert view.runner.running and view.arrivals >= 1
    view.cancel()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=60_000)
    assert not view.error.isVisible(), view.error.message.text()
    assert view.run_button.text() == "Resume tune" and "ended trials kept in the study" in view.job.stage.text()
    kept = {r.number: r for r in view.result.trials if r.state in ("complete", "failed")}
    assert 1 <= len(kept) < 6

    # resume: the same study, its ended trials kept (same measurements), up to 6 ended trials
    view.form.trials.setValue(4)
    assert view.run()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=600_000)
    assert not view.error.isVisible(), view.error.message.text()
    result = view.result
    assert len(_ended(view)) == 4
    assert all(r.state == "complete" for r in result.trials if r.number in _ended(view)), [r.reason for r in result.trials]
    for number, record in kept.items():
        again = result.trial(number)
        assert again.state == record.state and again.measurement == record.measurement
    document = json.loads((Path(result.folder) / "tune.json").read_text())
    assert document["front"] == [r.number for r in result.front]
    # every measured trial is on the scatter; the front's points (and rows) are exactly the result's front
    measured = [r for r in result.trials if r.state == "complete" and r.interval is not None]
    assert view.plot.drawn == len(measured) and view.plot.front_drawn == len(result.front) >= 1
    assert sorted(_front_rows(view)) == sorted(r.number for r in result.front)
    assert view.table.rowCount() == len(result.trials)
    points = [c for c in view.plot.figure.axes[0].collections if isinstance(c, PathCollection)]
    assert len(points) == len(measured)
    assert sum(tuple(c.get_facecolor()[0][:3]) == to_rgb(FRONT) for c in points) == len(result.front)

    # promote the fastest front point: its build becomes the build folder, with its plan
    best = result.front[0]
    row = next(r for r in range(view.table.rowCount()) if int(view.table.item(r, 0).text()) == best.number)
    view.table.selectRow(row)
    assert view.selected_trial() == best.number and view.promote_button.isEnabled()
    assert view.promote_selected()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=120_000)
    assert not view.error.isVisible(), view.error.message.text()
    manifest = json.loads((out / "edgekit-manifest.json").read_text())
    assert (out / "edgekit-plan.json").is_file()
    assert [a["sha256"] for a in manifest["artifacts"]] == [best.build.sha256]
    assert view.promoted.artifacts[0].sha256 == best.build.sha256


@pytest.mark.slow
def test_resuming_with_other_settings_shows_the_study_s_refusal(window, qtbot, mlp, tmp_path):
    view = window.tune_view
    window.show_view("Tune")
    out = tmp_path / "build"
    view.set_settings(_settings(mlp, out, trials=1))
    assert view.run()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=300_000)
    assert not view.error.isVisible(), view.error.message.text()
    assert len(_ended(view)) == 1 and view.plot.drawn == 1
    # a failed trial: greyed in the table with its reason, not on the scatter
    failed = view.result.trials[0].model_copy(update={"number": 9, "state": "failed", "measurement": None, "values": {},
                                                      "reason": "measurement failed on local:cpu: the process died"})
    view.show_result(view.result.model_copy(update={"trials": (*view.result.trials, failed)}))
    row = view.table.rowCount() - 1
    assert [view.table.item(row, c).text() for c in (0, 2, 3, 7)] == [
        "9", "failed", "-", "measurement failed on local:cpu: the process died"]
    assert view.table.item(row, 1).foreground().color() == QColor(FAILED_FOREGROUND)
    assert view.plot.drawn == 1 and "1 failed" in view.summary.text()
    view.form.seed.setValue(4)  # the same folder, another seed: another study
    assert view.run()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=120_000)
    assert view.error.isVisible()
    assert view.error.message.text() == (f"the study at {out.parent / 'build.tune' / 'study.db'} was started with other "
                                         "settings (seed differ)")
    assert "give another --out to start a new study" in view.error.hint.text()


def test_a_constraint_that_is_not_a_number_is_refused_before_starting(window):
    view = window.tune_view
    window.show_view("Tune")
    view.form.model.edit.setText("model.onnx")
    view.form.output_dir.edit.setText("out")
    view.form.constraint_fields["max_latency_ms"].setText("fast")
    assert not view.run() and not view.runner.running and view.error.isVisible()
    assert view.error.message.text() == "a constraint is not valid: max latency: 'fast' is not a number"


def test_the_tune_request_and_each_trial_message_cross_the_protocol():
    settings = TuneSettings(model="m.onnx", output_dir="out", constraints={"min_accuracy": 0.9}, trials=3)
    request = REQUEST.validate_json(TuneRequest(settings=settings).model_dump_json())
    assert isinstance(request, TuneRequest) and request.settings == settings
    message = decode(encode(Trial(number=4, result={"trials": []})))
    assert isinstance(message, Trial) and message.number == 4 and message.result == {"trials": []}
    with pytest.raises(ValueError):
        TuneSettings(trials=0)


def test_the_tune_settings_are_remembered_between_sessions(window, qtbot, settings):
    from edgekit.gui.main_window import MainWindow

    view = window.tune_view
    remembered = TuneSettings(model="/models/m.onnx", target="cpu-x86", objectives=["latency", "size"], trials=12, seed=7,
                              formats=["onnx"], calibration_data="/data/cal.npy", validation_data="/data/val.npy",
                              output_dir="/builds/m", runs=30, min_seconds=0.5,
                              constraints={"min_accuracy": 0.97, "max_size_bytes": 40 * 1024.0})
    view.set_settings(remembered)
    view.form.constraint_fields["max_latency_ms"].setText("fast")  # not a number: left out of what is remembered
    window.close()
    assert TuneSettings.model_validate_json(settings.value("tune/settings")) == remembered
    reopened = MainWindow(settings=settings, refresh_devices=False)
    qtbot.addWidget(reopened)
    assert reopened.tune_view.form.settings() == remembered
    assert reopened.tune_view.result is None  # no study beside /builds/m: nothing shown
    settings.setValue("tune/settings", '{"trials": 0}')  # another version's (or a broken) entry: the defaults
    again = MainWindow(settings=settings, refresh_devices=False)
    qtbot.addWidget(again)
    assert again.tune_view.form.settings().trials == TuneSettings().trials and settings.value("tune/settings") is None


@pytest.mark.slow
def test_a_resumed_study_shows_its_trials_before_a_new_trial_ends(window, qtbot, settings, mlp, tmp_path):
    from edgekit.gui.main_window import MainWindow

    import edgekit

    out = tmp_path / "build"
    before = _settings(mlp, out, trials=3)
    # a study an earlier session ran (the same settings the view sends)
    edgekit.tune(before.model, target=before.target, objectives=tuple(before.objectives), constraints=before.constraints,
                 trials=3, seed=before.seed, formats=before.formats, calibration_data=before.calibration_data,
                 validation_data=before.validation_data, output_dir=out, runs=before.runs, min_seconds=before.min_seconds)
    window.tune_view.set_settings(before)
    window.close()
    reopened = MainWindow(settings=settings, refresh_devices=False)
    qtbot.addWidget(reopened)
    view = reopened.tune_view
    # at start, from the remembered settings: the study's 3 trials in the table and on the scatter
    assert view.result is not None and len(_ended(view)) == 3 and view.table.rowCount() == len(view.result.trials)
    measured = [r for r in view.result.trials if r.state == "complete"]
    assert view.plot.drawn == len(measured) == 3 and view.plot.front_drawn == len(view.result.front) >= 1
    view.show_result(view.result.model_copy(update={"trials": ()}))  # cleared, then resumed: shown again at once
    assert view.table.rowCount() == 0
    view.form.trials.setValue(5)
    assert view.run()
    assert view.runner.running and view.arrivals == 0 and len(_ended(view)) == 3 and view.plot.drawn == 3
    qtbot.waitUntil(lambda: not view.runner.running, timeout=600_000)
    assert not view.error.isVisible(), view.error.message.text()
    assert len(_ended(view)) == 5 and view.arrivals >= 2
    assert all(view.result.trial(r.number) == r for r in measured)  # kept as the earlier session measured them
