"""The data preview and accuracy in the Convert view: labelled data is recognised wherever it is given."""
from __future__ import annotations

import numpy as np
import pytest


def test_choosing_labelled_validation_data_previews_it(window, qtbot, tmp_path):
    view = window.convert_view
    x = np.linspace(0, 1, 40 * 64, dtype=np.float32).reshape(40, 8, 8, 1)
    np.savez(tmp_path / "val.npz", x=x, y=np.array([0] * 25 + [1] * 10 + [2] * 5))
    with qtbot.waitSignal(view.preview_panel.shown, timeout=60_000):
        view.validation.set_path(str(tmp_path / "val.npz"))
    panel = view.preview_panel
    assert view.tabs.currentWidget() is panel
    assert "40 samples" in panel.summary.text() and "labelled (y: 3 classes) — accuracy is measured" in panel.summary.text()
    rows = {panel.arrays.item(r, 0).text(): [panel.arrays.item(r, c).text() for c in range(1, 6)]
            for r in range(panel.arrays.rowCount())}
    assert rows["x"] == ["(40, 8, 8, 1)", "float32", "0", "1", "0.5"]
    assert rows["y"][:2] == ["(40,)", "int64"]
    assert panel.labels.drawn == 3
    heights = [bar.get_height() for bar in panel.labels.figure.axes[0].patches]
    assert heights == [25, 10, 5]
    np.save(tmp_path / "calib.npy", x[:12])
    with qtbot.waitSignal(view.preview_panel.shown, timeout=60_000):
        view.calibration.set_path(str(tmp_path / "calib.npy"))
    assert "12 samples · no labels" in panel.summary.text() and panel.labels.drawn == 0
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 broken")
    with qtbot.waitSignal(view.previewer.failed, timeout=60_000):
        view.validation.set_path(str(tmp_path / "bad.npz"))
    assert "bad.npz is not a readable .npz file" in view.error.message.text()


def test_every_plot_saves_as_png(window, tmp_path):
    from edgekit.gui.plots import PlotCanvas

    plots = window.findChildren(PlotCanvas)
    assert len(plots) >= 4  # latency, per-op, comparison, labels
    for index, plot in enumerate(plots):
        assert plot.save_action.text() == "Save as PNG…" and plot.save_action in plot.actions()
        written = plot.save(tmp_path / f"plot{index}")
        assert written.suffix == ".png" and written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_labelled_validation_data_gives_accuracy_in_the_convert_view(window, qtbot, digits_keras_file, digits, tmp_path):
    view = window.convert_view
    window.open_paths([str(digits_keras_file)])
    qtbot.waitUntil(lambda: view.io_table.rowCount() == 2, timeout=120_000)
    _, x_test, _, y_test = digits
    np.savez(tmp_path / "test.npz", x=x_test[:200], y=y_test[:200])
    view.target.setCurrentIndex(view.target.findData("cpu-x86"))
    for name, box in view.format_boxes.items():
        box.setChecked(name == "onnx")
    for name, box in view.precision_boxes.items():
        box.setChecked(name == "fp32")
    view.validation.edit.setText(str(tmp_path / "test.npz"))  # the x/y file the Profile view takes
    view.output_dir.edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(view.build_ready, timeout=300_000) as done:
        assert view.run()
    validation = done.args[0].artifacts[0].validation
    assert validation.samples == 200 and validation.data_origin == "validation_data"
    assert 0.85 < validation.accuracy <= 1.0
    cell = view.results.item(0, 3).text()
    assert cell.startswith(f"{validation.accuracy:.3f}\n[") and cell != "-"
