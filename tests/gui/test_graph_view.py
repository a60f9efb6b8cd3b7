"""The Graph view and the Check step, driven offscreen: real ONNX graphs, real profiles, real job processes."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from edgekit.gui.graph_scene import NO_TRACE, PLACEMENT_COLOURS
from PySide6.QtGui import QColor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from graph_models import div_chain  # noqa: E402

import edgekit  # noqa: E402


@pytest.fixture
def chain(tmp_path) -> Path:
    return div_chain(tmp_path / "chain.onnx")


def _show(window, qtbot, path: Path, target: str):
    view = window.graph_view
    window.show_view("Graph")
    view.set_files([str(path)], target)
    assert view.show_file(view.file.currentData())
    qtbot.waitUntil(lambda: not view.runner.running, timeout=120_000)
    assert not view.error.isVisible(), view.error.message.text()
    return view


def _fills(view) -> dict[str, str]:
    return {box.node.name: box.brush().color().name() for box in view.scene.items_by_id.values() if box.node.kind == "op"}


def test_the_graph_view_colours_each_op_by_where_the_edge_tpu_runs_it(window, qtbot, chain):
    view = _show(window, qtbot, chain, "coral-edgetpu")
    assert len(view.scene.items_by_id) == 7  # 5 ops, the input and the output
    accelerator, fallback = (QColor(PLACEMENT_COLOURS[k][0]).name() for k in ("accelerator", "fallback"))
    assert _fills(view) == {"conv0": accelerator, "relu0": accelerator, "div0": fallback, "conv1": fallback, "add0": fallback}
    assert "5 ops on coral-edgetpu as tflite: 2 on the accelerator, 3 CPU fallback" in view.summary.text()
    view.select_node(next(n.id for n in view.graph.ops() if n.name == "div0"))
    assert "DIV" in view.details.text() and "runs on the CPU" in view.details.text()
    view.mode.setCurrentIndex(1)  # by int8 error: no trace yet, every op is the no-trace grey
    assert set(_fills(view).values()) == {QColor(NO_TRACE).name()}


def test_a_target_without_an_op_set_shows_not_checked_never_clean(window, qtbot, chain):
    view = _show(window, qtbot, chain, "intel-npu")
    assert set(_fills(view).values()) == {QColor(PLACEMENT_COLOURS["not_checked"][0]).name()}
    assert "5 not checked" in view.summary.text()
    assert "intel-npu states no op set: placement is not checked (not the same as clean)" in view.summary.text()


def test_a_missing_graphviz_is_named_with_the_install_line(monkeypatch, tmp_path, chain):
    from edgekit.gui.graph_layout import layout

    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    with pytest.raises(edgekit.EdgekitError) as caught:
        layout(edgekit.model_graph(chain))
    assert caught.value.message == "Graphviz's dot program is not installed: the graph view cannot lay the model out"
    assert "sudo apt-get install graphviz" in caught.value.hint


def test_the_check_step_lists_what_leaves_the_edge_tpu_before_converting(window, qtbot, chain):
    view = window.convert_view
    view.model.edit.setText(str(chain))
    view.target.setCurrentIndex(view.target.findData("coral-edgetpu"))
    panel = view.check_panel
    assert view.tabs.currentWidget() is panel  # the Check step comes first
    assert panel.run()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=120_000)
    text = panel.summary.text()
    assert "tflite: <b>3 of 5 ops</b>" in text and "leave the accelerator and run on the CPU" in text
    assert "inputs and outputs become uint8 with a scale and zero point" in text
    assert "vendor tool not run: edgetpu_compiler" in text
    assert "validation ran on this host's CPU" in text
    rows = [(panel.findings.item(r, 0).text(), panel.findings.item(r, 2).text()) for r in range(panel.findings.rowCount())]
    assert ("fallback", "div0 / Div") in rows


def test_the_check_step_says_not_checked_for_intel_npu(window, qtbot, chain):
    view = window.convert_view
    view.model.edit.setText(str(chain))
    view.target.setCurrentIndex(view.target.findData("intel-npu"))
    panel = view.check_panel
    assert panel.run()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=120_000)
    assert "openvino: 5 ops — <b>not checked</b>: intel-npu states no op set" in panel.summary.text()
    assert "an empty findings table does not mean clean" in panel.summary.text()
