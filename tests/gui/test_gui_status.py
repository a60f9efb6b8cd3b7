"""A status you can trust: each job's end is its own, no reload on focus-out, results follow the model,
a target change keeps what it supports, projects saved under any name reopen, a wrong token is named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent


def _onnx_model(path: Path, width: int) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((4, width), 0.5, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])], initializer=[weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def two_models(tmp_path) -> tuple[Path, Path]:
    return _onnx_model(tmp_path / "alpha.onnx", 3), _onnx_model(tmp_path / "beta.onnx", 5)


def _failures(runner) -> list:
    seen: list = []
    runner.failed.connect(lambda message, hint: seen.append(message))
    return seen


def test_opening_model_b_while_a_loads_shows_b_and_no_crash(window, qtbot, two_models):
    view = window.convert_view
    texts: list[str] = []
    view.status_message.connect(texts.append)
    failures = _failures(view.inspector)
    alpha, beta = two_models
    window.open_paths([str(alpha)])
    assert view.inspector.running
    window.open_paths([str(beta)])  # A's job is cancelled: its end must not be reported against B's
    qtbot.waitUntil(lambda: view.io_table.rowCount() == 2 and not view.inspector.running, timeout=60_000)
    assert view.io_table.item(1, 2).text() == "(1, 5)"  # beta's output
    assert failures == [] and not view.error.isVisible()
    assert view.model_info.text().startswith("<b>onnx</b> model")
    assert texts[-1] == "beta.onnx: 1 input(s), 1 output(s)"


def test_reopening_a_project_twice_shows_no_crash_panel(window, qtbot, two_models, tmp_path):
    view = window.convert_view
    failures = _failures(view.inspector)
    view.open_model(str(two_models[0]))
    qtbot.waitUntil(lambda: view.io_table.rowCount() == 2, timeout=60_000)
    project = window.save_project(str(tmp_path / "run"))  # typed without the suffix
    assert project.name == "run.edgekit.json"
    window.open_paths([str(project)])
    window.open_paths([str(project)])  # the first reopen is still inspecting
    qtbot.waitUntil(lambda: view.io_table.rowCount() == 2 and not view.inspector.running, timeout=60_000)
    assert failures == [] and not view.error.isVisible()
    assert window.windowTitle() == "edgekit — run.edgekit.json"


def test_a_project_file_without_the_suffix_still_opens_as_a_project(window, tmp_path):
    from edgekit.gui.jobs import ConvertOptions
    from edgekit.gui.project import Project, kind_of_path

    plain = tmp_path / "notes"
    Project(options=ConvertOptions(target="cpu-arm64")).save(plain)
    assert not plain.exists() and kind_of_path(tmp_path / "notes.edgekit.json") == "project"
    renamed = tmp_path / "renamed-by-hand"
    (tmp_path / "notes.edgekit.json").rename(renamed)
    assert kind_of_path(renamed) == "project"  # sniffed by content, not by name
    window.open_paths([str(renamed)])
    assert window.convert_view.target.currentData() == "cpu-arm64" and not window.convert_view.error.isVisible()


def test_leaving_the_model_field_does_not_read_the_model_again(window, qtbot, two_models):
    view = window.convert_view
    starts: list[bool] = []
    view.inspector.running_changed.connect(lambda running: running and starts.append(running))
    view.open_model(str(two_models[0]))
    qtbot.waitUntil(lambda: view.io_table.rowCount() == 2 and not view.inspector.running, timeout=60_000)
    view.model.edit.editingFinished.emit()  # what Qt sends when the field loses focus
    view.model.edit.editingFinished.emit()
    assert starts == [True] and not view.inspector.running
    view.model.edit.setText(str(two_models[1]))  # an edited path is read
    view.model.edit.editingFinished.emit()
    assert view.inspector.running and len(starts) == 2
    qtbot.waitUntil(lambda: not view.inspector.running, timeout=60_000)


def test_results_of_the_previous_model_are_cleared(window, qtbot, two_models, tmp_path):
    from test_gui_verdicts import _build

    view = window.convert_view
    view.show_build(_build(tmp_path, 64, 0))
    assert view.results.rowCount() == 1 and view.profile_button.isEnabled()
    view.open_model(str(two_models[1]))
    assert view.results.rowCount() == 0 and view.findings.rowCount() == 0 and view.build is None
    assert not view.profile_button.isEnabled() and view.build_info.text() == "No build yet"
    qtbot.waitUntil(lambda: not view.inspector.running, timeout=60_000)


def test_a_target_change_keeps_the_formats_and_precisions_it_supports(window):
    view = window.convert_view

    def chosen() -> tuple[list[str], list[str]]:
        options = view.options()
        return options.formats, options.precisions

    view.target.setCurrentIndex(view.target.findData("cpu-x86"))
    for name, box in view.format_boxes.items():
        box.setChecked(name in ("tflite", "onnx"))
    for name, box in view.precision_boxes.items():
        box.setChecked(name in ("fp32", "fp16"))
    view.target.setCurrentIndex(view.target.findData("cpu-arm64"))  # runs tflite and onnx, any precision
    assert chosen() == (["tflite", "onnx"], ["fp32", "fp16"])
    view.target.setCurrentIndex(view.target.findData("nvidia-jetson"))  # onnx only; fp32, fp16, int8
    assert chosen() == (["onnx"], ["fp32", "fp16"])
    view.target.setCurrentIndex(view.target.findData("coral-edgetpu"))  # nothing chosen fits: its own defaults
    assert chosen() == (["tflite"], ["int8"])


def test_the_default_output_folder_is_per_model_and_target(window, qtbot, two_models):
    view = window.convert_view
    alpha, beta = two_models
    view.output_dir.edit.clear()
    view.target.setCurrentIndex(view.target.findData("cpu-x86"))
    view.open_model(str(alpha))
    assert view.output_dir.path() == str(alpha.parent / "alpha-cpu-x86-edgekit")
    view.target.setCurrentIndex(view.target.findData("coral-edgetpu"))
    assert view.output_dir.path() == str(alpha.parent / "alpha-coral-edgetpu-edgekit")
    view.open_model(str(beta))
    assert view.output_dir.path() == str(beta.parent / "beta-coral-edgetpu-edgekit")
    view.output_dir.edit.setText(str(beta.parent / "mine"))  # chosen by the user: kept
    view.target.setCurrentIndex(view.target.findData("cpu-x86"))
    assert view.output_dir.path() == str(beta.parent / "mine")
    qtbot.waitUntil(lambda: not view.inspector.running, timeout=60_000)


def test_a_dropped_project_or_build_folder_is_not_taken_for_a_model(window, tmp_path):
    from edgekit.gui.jobs import ConvertOptions
    from edgekit.gui.project import Project

    project = Project(options=ConvertOptions(target="raspberry-pi")).save(tmp_path / "dropped.edgekit.json")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(project))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.convert_view.dropEvent(event)
    assert window.convert_view.target.currentData() == "raspberry-pi"
    assert window.convert_view.model.path() == "" and window.project_path == str(project)


def test_a_wrong_agent_token_is_reported_as_such(window, qtbot, tmp_path):
    from agent_harness import start_agent

    agent = start_agent(tmp_path / "agent-home")
    try:
        devices = window.devices_view
        devices.address.setText(agent.url)
        devices.token.setText("not-the-token")
        with qtbot.waitSignal(devices.agent_checker.running_changed, timeout=60_000,
                              check_params_cb=lambda running: not running):
            devices.add_agent()
        row = devices.agents[agent.url]
        assert row.state == "wrong token" and "refused the token" in row.detail
        assert "refused the token" in devices.error.message.text()
        assert agent.url not in [c.device for c in devices.choices()]
    finally:
        agent.stop()
