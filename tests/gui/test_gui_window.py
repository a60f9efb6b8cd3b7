"""The real main window, driven end to end offscreen: open a model, convert, profile, plots, cancel, errors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from edgekit.gui.main_window import MainWindow
from PySide6.QtCore import Qt, QTimer


class LoopTicks:
    """Counts the ticks of a 10 ms timer on the GUI thread (the event loop's gaps are measured by
    bench/gui_responsiveness.py, not asserted here)."""

    def __init__(self) -> None:
        self.timer = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.ticks = 0

    def _tick(self) -> None:
        self.ticks += 1

    def __enter__(self) -> LoopTicks:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()


def _choose(view, formats: list[str], precisions: list[str], output_dir: Path) -> None:
    view.target.setCurrentIndex(view.target.findData("cpu-x86"))
    for name, box in view.format_boxes.items():
        box.setChecked(name in formats)
    for name, box in view.precision_boxes.items():
        box.setChecked(name in precisions)
    view.output_dir.edit.setText(str(output_dir))


def _open_model(window, qtbot, path: Path) -> None:
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.convert_view.io_table.rowCount() == 2, timeout=60_000)


def _processes_using(folder: Path) -> list[int]:
    """Processes with a file open inside ``folder`` (a converter worker writes its log there)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(t.startswith(str(folder)) for t in targets):
            found.append(int(pid))
    return found


def test_corrupt_model_shows_the_error_and_hint_in_the_window(window, qtbot, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07\x12\x04edge" + bytes(range(200)))
    window.open_paths([str(bad)])
    panel = window.convert_view.error
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=60_000)
    assert "broken.onnx" in panel.message.text()
    assert panel.hint.text().startswith("Hint: ")
    assert "Traceback" not in panel.message.text() + panel.hint.text()
    assert window.convert_view.model_info.text() == "This model could not be read."
    assert window.convert_view.io_table.rowCount() == 0


def test_run_without_an_output_folder_is_refused_inline(window, qtbot, tmp_path):
    view = window.convert_view
    view.output_dir.edit.clear()
    view.model.edit.setText(str(tmp_path / "m.keras"))
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.error.isVisible() and view.error.message.text() == "no output folder chosen"
    assert not view.converter.running


@pytest.mark.slow
def test_convert_then_profile_end_to_end(window, qtbot, settings, digits_keras_file, digits, tmp_path):
    view = window.convert_view
    np.save(tmp_path / "val.npy", digits[1][:100])
    _open_model(window, qtbot, digits_keras_file)
    assert [view.io_table.item(r, 1).text() for r in range(2)] == ["image", "probabilities"]
    assert view.io_table.item(0, 2).text() == "(?, 8, 8, 1)"
    assert view.model_info.text().startswith("<b>keras3</b> model")
    out = tmp_path / "build"
    _choose(view, ["onnx"], ["fp32"], out)
    view.validation.edit.setText(str(tmp_path / "val.npy"))
    import edgekit

    assert view.target_facts.text().startswith(edgekit.load_profile("cpu-x86").description)

    progress = []
    view.converter.progress.connect(lambda stage, fraction, message: progress.append(stage))
    with LoopTicks() as loop, qtbot.waitSignal(view.build_ready, timeout=300_000) as done:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert not view.run_button.isEnabled()
    assert loop.ticks > 0  # the window kept handling events while the job process converted
    assert any(stage.startswith("convert:onnx") for stage in progress)

    build = done.args[0]
    assert view.results.rowCount() == 1
    assert [view.results.item(0, c).text() for c in (0, 1, 8)] == ["onnx", "fp32", "passed"]
    assert float(view.results.item(0, 4).text().split()[0]) >= 0.9999
    assert build.artifacts[0].validation.samples == 100
    assert (out / "edgekit-manifest.json").is_file()
    assert view.job.stage.text() == "Done: 1 of 1 passed"

    # profile the build on the local CPU
    qtbot.mouseClick(view.profile_button, Qt.MouseButton.LeftButton)
    profile = window.profile_view
    assert window.stack.currentWidget() is profile
    assert profile.checked(profile.artifacts) == [build.artifacts[0].path]
    assert profile.checked(profile.devices) == ["local:cpu"]
    profile.runs.setValue(30)
    profile.min_seconds.setValue(0.2)
    profile.warmup.setValue(2)
    profile.op_runs.setValue(5)
    with qtbot.waitSignal(profile.runner.succeeded, timeout=180_000):
        qtbot.mouseClick(profile.run_button, Qt.MouseButton.LeftButton)
    assert profile.results.rowCount() == 1
    assert profile.results.item(0, 9).text() == "complete"
    result = profile.results_list()[0]
    assert result.runs >= 30 and 0 < result.median_ms < 100
    assert profile.latency_plot.drawn == 1 and profile.comparison_plot.drawn == 1
    assert profile.ops_plot.drawn == min(len(result.ops), 12) > 0
    [json_path] = profile.export(str(tmp_path / "report.json"), "json")
    [html_path] = profile.export(str(tmp_path / "report.html"), "html")
    from edgekit.profiling import ProfileReport

    assert ProfileReport.load(json_path).results[0].runs == result.runs
    assert "<svg" in html_path.read_text()

    # a saved project reopens the options and the build's results; the options are remembered
    project = window.save_project(str(tmp_path / "digits.edgekit.json"))
    assert json.loads(project.read_text())["build_dir"] == str(out)
    window.close()
    reopened = MainWindow(settings=settings, refresh_devices=False)
    qtbot.addWidget(reopened)
    assert reopened.convert_view.options().formats == ["onnx"]  # from the settings
    reopened.convert_view.format_boxes["tflite"].setChecked(True)
    reopened.open_paths([str(project)])
    assert reopened.convert_view.options().formats == ["onnx"]
    assert reopened.convert_view.results.rowCount() == 1
    assert reopened.convert_view.results.item(0, 8).text() == "passed"
    assert reopened.profile_view.artifacts.count() == 1


@pytest.mark.slow
def test_cancel_a_conversion_keeps_nothing_and_stops_the_worker(window, qtbot, digits_keras_file, tmp_path):
    view = window.convert_view
    _open_model(window, qtbot, digits_keras_file)
    out = tmp_path / "cancelled"
    _choose(view, ["tflite", "onnx", "openvino"], ["fp32"], out)
    with qtbot.waitSignal(view.converter.progress, timeout=120_000,
                          check_params_cb=lambda stage, fraction, message: stage.startswith("convert")):
        assert view.run()
    with qtbot.waitSignal(view.converter.cancelled, timeout=20_000):
        qtbot.mouseClick(view.job.cancel, Qt.MouseButton.LeftButton)
    assert view.job.stage.text() == "Cancelled: nothing half-written was kept"
    assert not view.error.isVisible()
    assert not out.exists()  # a build publishes its folder only when it completes
    assert [p.name for p in tmp_path.iterdir() if ".edgekit" in p.name] == []  # the staging folder and lock are gone too
    qtbot.waitUntil(lambda: not _processes_using(tmp_path / ".cancelled.edgekit-"), timeout=10_000)
    assert view.run_button.isEnabled()


def test_app_run_opens_paths_and_returns_the_exit_code(qtbot, tmp_path):
    from edgekit.gui.app import run
    from PySide6.QtWidgets import QApplication

    bad = tmp_path / "notes.txt"
    bad.write_text("not a model")
    seen = {}

    def close_windows() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                seen["model"] = widget.convert_view.model.path()
                widget.close()

    QTimer.singleShot(500, close_windows)
    assert run([str(bad)]) == 0
    assert seen["model"] == str(bad)
