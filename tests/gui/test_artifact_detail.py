"""The artifact detail pane and the int8 trace on the graph, on real digits builds (slow: they convert)."""
from __future__ import annotations

import numpy as np
import pytest
from edgekit.gui.artifact_detail import ArtifactDetail
from edgekit.gui.graph_scene import CULPRIT_PEN

import edgekit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def builds(tmp_path_factory, digits_keras_file, digits):
    work = tmp_path_factory.mktemp("detail")
    x_train, x_test, _, _ = digits
    np.save(work / "cal.npy", x_train[:200])
    np.save(work / "val.npy", x_test[:100])
    made = {"val": str(work / "val.npy")}
    for target, precision in (("coral-edgetpu", None), ("intel-npu", None), ("cpu-x86", ["fp32", "int8"])):
        made[target] = edgekit.convert(str(digits_keras_file), target=target, precision=precision,
                                       formats=None if target != "cpu-x86" else ["tflite"],
                                       calibration_data=str(work / "cal.npy"), validation_data=str(work / "val.npy"),
                                       output_dir=str(work / target))
    return made


def test_the_edge_tpu_artifact_shows_uint8_io_with_scale_and_zero_point(qtbot, builds):
    build = builds["coral-edgetpu"]
    artifact = build.artifacts[0]
    pane = ArtifactDetail()
    qtbot.addWidget(pane)
    pane.show_artifact(artifact, edgekit.load_profile(build.target))
    rows = [[pane.io.item(r, c).text() for c in range(6)] for r in range(pane.io.rowCount())]
    assert [r[0] for r in rows] == ["in", "out"]
    assert rows[0][2] == "(1, 8, 8, 1)" and rows[0][3] == "uint8"
    assert float(rows[0][4]) == pytest.approx(1 / 255, rel=1e-3) and rows[0][5] == "0"
    facts = pane.facts.text()
    assert "<b>ops</b> 10: 10 on the accelerator, 0 CPU fallback (0% of the estimated compute)" in facts
    assert "run on this host's CPU, not on coral-edgetpu" in facts
    assert "vendor tool not run: edgetpu_compiler" in facts


def test_the_intel_npu_artifact_says_not_checked_instead_of_clean(qtbot, builds):
    build = builds["intel-npu"]
    pane = ArtifactDetail()
    qtbot.addWidget(pane)
    pane.show_artifact(build.artifacts[0], edgekit.load_profile("intel-npu"))
    facts = pane.facts.text()
    assert "placement <b>not checked</b>" in facts
    assert "not checked — intel-npu states no op set" in facts and "does not mean clean" in facts
    assert "vendor tool not run: OpenVINO NPU plugin and driver" in facts


def test_the_int8_trace_colours_the_graph_and_clicks_through(window, qtbot, builds):
    build = builds["cpu-x86"]
    int8 = next(a for a in build.artifacts if a.precision == "int8")
    view = window.graph_view
    view.set_files([int8.path], "cpu-x86")
    view.data.edit.setText(builds["val"])
    assert view.debug()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=300_000)
    assert not view.error.isVisible(), view.error.message.text()
    assert view.graph.debugged and view.mode.currentData() == "error"
    traced = [n for n in view.graph.ops() if n.added_error is not None]
    assert len(traced) == view.trace_table.rowCount() == len(view.trace.layers)
    culprits = [n for n in view.graph.ops() if n.culprit]
    assert culprits and len(culprits) <= 3
    box = view.scene.items_by_id[culprits[0].id]
    assert box.pen().color().name() == CULPRIT_PEN and box.pen().widthF() == 3.0
    view.select_node(culprits[0].id)
    selected = view.trace_table.selectedItems()
    assert selected and selected[0].text() == str(culprits[0].trace_index)
    assert "culprit" in view.details.text()
