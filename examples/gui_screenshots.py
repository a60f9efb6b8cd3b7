"""Screenshots of every view of the desktop app at 1024x700 and 1920x1080, driven like a user would drive it.

Trains the digits classifier, checks it against the Edge TPU (coral-edgetpu) before converting, converts it for
cpu-x86 to TFLite, ONNX and OpenVINO at fp32 and int8 through the Convert view (with labelled validation data, so
accuracy is measured), looks at the devices, profiles every artifact on the local CPU with a labelled dataset,
shows the int8 TFLite artifact's graph placed on the Edge TPU, tunes a small ONNX digits classifier for cpu-x86 in the Tune view
(a few real trials), opens the history, and saves one PNG per view, tab, plot and size to docs/screenshots/
(``<view>-<width>x<height>.png``). Run it on a display, or under Xvfb:

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python examples/gui_screenshots.py

A new view is one more entry in ``SHOTS``: a name and a function that brings the window to the state to show.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from digits_demo import digits_split, train_classifier
from edgekit.gui.jobs import TuneSettings
from edgekit.gui.main_window import MainWindow
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

SIZES = ((1024, 700), (1920, 1080))
TUNE_TRIALS = 4
TUNE_SECONDS = 420  # the study is stopped after this (its ended trials are kept and shown)


def wait_until(app: QApplication, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the event loop until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.6) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def prepare(app: QApplication, window: MainWindow, work: Path) -> None:
    """Build, probe devices and profile once; the shots then only switch views."""
    x_train, x_test, y_train, y_test = digits_split()
    model = train_classifier(x_train, y_train, work / "digits.keras")
    np.save(work / "calibration.npy", x_train[:300])
    np.savez(work / "digits-test.npz", x=x_test, y=y_test)

    convert = window.convert_view
    window.open_paths([str(model)])
    wait_until(app, lambda: convert.io_table.rowCount() == 2, 120, "the model's inputs and outputs")
    convert.calibration.edit.setText(str(work / "calibration.npy"))
    convert.validation.set_path(str(work / "digits-test.npz"))
    convert.target.setCurrentIndex(convert.target.findData("coral-edgetpu"))
    assert convert.check_panel.run()
    wait_until(app, lambda: convert.check_panel.report is not None, 300, "the check against coral-edgetpu")
    convert.target.setCurrentIndex(convert.target.findData("cpu-x86"))
    for name, box in convert.format_boxes.items():
        box.setChecked(name in ("tflite", "onnx", "openvino"))
    for name, box in convert.precision_boxes.items():
        box.setChecked(name in ("fp32", "int8"))
    convert.output_dir.edit.setText(str(work / "digits-cpu-x86-edgekit"))
    assert convert.run(), convert.error.message.text()
    wait_until(app, lambda: not convert.converter.running, 900, "the conversion")
    if not convert.results.rowCount():
        raise SystemExit(f"the conversion failed: {convert.error.message.text()} {convert.error.hint.text()}")

    wait_until(app, lambda: not window.devices_view.prober.running and window.devices_view.table.rowCount() > 0, 120,
               "devices")
    profile = window.profile_view
    profile.set_artifacts([a.path for a in convert.build.artifacts])
    profile.runs.setValue(200)
    profile.min_seconds.setValue(1.0)
    profile.dataset.edit.setText(str(work / "digits-test.npz"))
    assert profile.run(), profile.error.message.text()
    wait_until(app, lambda: not profile.runner.running, 900, "the profiling run")
    onnx_fp32 = next(i for i, r in enumerate(profile.results_list()) if (r.format, r.precision) == ("onnx", "fp32"))
    profile.results.selectRow(onnx_fp32)  # the per-op plot shows the selected result (LiteRT has no per-op times)

    graph = window.graph_view
    graph.set_files([str(model)] + [a.path for a in convert.build.artifacts], "coral-edgetpu")
    int8 = next(a.path for a in convert.build.artifacts if (a.format, a.precision) == ("tflite", "int8"))
    graph.file.setCurrentIndex(graph.file.findData(int8))
    assert graph.show_file(int8)  # placed on the Edge TPU's op set
    wait_until(app, lambda: not graph.runner.running, 600, "the graph of the int8 artifact")
    tune(app, window, work)


def tune(app: QApplication, window: MainWindow, work: Path) -> None:
    """A small real study: ONNX Runtime builds of a digits classifier tuned for cpu-x86, the fastest front point chosen."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tune_models import make_mlp

    files = make_mlp(work / "tune")
    view = window.tune_view
    view.set_settings(TuneSettings(model=str(files["model"]), target="cpu-x86", formats=["onnx"], trials=TUNE_TRIALS,
                                   seed=1, calibration_data=str(files["calibration"]),
                                   validation_data=str(files["validation"]), output_dir=str(work / "tune-build"),
                                   runs=30, min_seconds=0.3, constraints={"min_accuracy": 0.9}))
    assert view.run(), view.error.message.text()
    deadline = time.monotonic() + TUNE_SECONDS
    while view.runner.running and time.monotonic() < deadline:
        settle(app, 0.2)
    if view.runner.running:
        view.cancel()
        wait_until(app, lambda: not view.runner.running, 120, "the tune to stop")
    if view.result is not None and view.result.front:
        best = view.result.front[0].number
        view.table.selectRow(next(r for r in range(view.table.rowCount()) if int(view.table.item(r, 0).text()) == best))


def _convert_tab(panel: str) -> Callable[[MainWindow], None]:
    def show(window: MainWindow) -> None:
        window.show_view("Convert")
        window.convert_view.tabs.setCurrentWidget(getattr(window.convert_view, panel))
    return show


def _artifact_detail(window: MainWindow) -> None:
    """The int8 TFLite artifact's detail, as a click on its row shows it."""
    window.show_view("Convert")
    view = window.convert_view
    row = next(i for i, a in enumerate(view.build.artifacts) if (a.format, a.precision) == ("tflite", "int8"))
    view.results.selectRow(row)
    view._artifact_clicked(row)


def _profile_tab(index: int) -> Callable[[MainWindow], None]:
    def show(window: MainWindow) -> None:
        window.show_view("Profile")
        window.profile_view.plots.setCurrentIndex(index)
    return show


def _history(window: MainWindow) -> None:
    window.show_view("History")
    history = window.history_view
    history.table.selectAll()
    history.compare_rows(list(range(len(history.shown))))


#: (file name, how to get there)
SHOTS: list[tuple[str, Callable[[MainWindow], None]]] = [
    ("convert", _convert_tab("findings")),
    ("convert-check", _convert_tab("check_panel")),
    ("convert-calibration-data", _convert_tab("data_panel")),
    ("convert-artifact-detail", _artifact_detail),
    ("convert-contract", _convert_tab("contract_panel")),
    ("convert-data-preview", _convert_tab("preview_panel")),
    ("devices", lambda window: window.show_view("Devices")),
    ("profile-latency", _profile_tab(0)),
    ("profile-ops", _profile_tab(1)),
    ("profile-comparison", _profile_tab(2)),
    ("graph", lambda window: window.show_view("Graph")),
    ("tune", lambda window: window.show_view("Tune")),
    ("history", _history),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="edgekit-gui-shots-"))

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(settings=QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(*SIZES[-1])
    window.show()
    prepare(app, window, work)
    shots: list[Path] = []
    for width, height in SIZES:
        window.resize(width, height)
        settle(app)
        for name, show in SHOTS:
            show(window)
            settle(app)
            path = args.out / f"{name}-{width}x{height}.png"
            window.grab().save(str(path))
            shots.append(path)
    window.close()
    print("\n".join(str(p) for p in shots))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown: Qt and TensorFlow objects freed in arbitrary order there can abort
