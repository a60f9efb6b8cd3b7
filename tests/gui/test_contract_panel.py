"""The Convert view's contract panel (offscreen): the editor checks a declared contract and hands it to the
build; the view lists the contract each artifact of a real build carries."""
from __future__ import annotations

import pytest

from tests.formats import models


@pytest.fixture(scope="module")
def onnx_build(tmp_path_factory):
    import edgekit

    folder = tmp_path_factory.mktemp("contract-gui")
    model = models.onnx_model(folder / "add.onnx")
    contract = {"inputs": [{"name": "x", "range": [-4, 4]}], "outputs": [{"name": "y", "kind": "tensor"}]}
    return edgekit.convert(model, formats=["onnx"], precision=["fp32"], output_dir=folder / "build", contract=contract,
                           isolate=False)


def test_the_editor_refuses_an_invalid_contract_and_passes_a_valid_one(qtbot):
    from edgekit.gui.contract_panel import ContractPanel
    from edgekit.gui.jobs import ConvertOptions, convert_arguments

    panel = ContractPanel()
    qtbot.addWidget(panel)
    assert panel.declared() is None and panel.check()
    panel.editor.setPlainText("inputs:\n  - name: image\n    colour: RGB\n")
    assert not panel.check()
    assert "is not a valid contract" in panel.status.text() and "colour" in panel.status.text()
    panel.editor.setPlainText("inputs:\n  - name: image\n    color: BGR\n    range: [0, 255]\n")
    assert panel.check() and panel.status.text() == "Valid: 1 input(s), 0 output(s)"
    arguments = convert_arguments(ConvertOptions(model="m.onnx", output_dir="out", contract=panel.editor.toPlainText()))
    assert arguments["contract"]["inputs"] == [{"name": "image", "color": "BGR", "range": [0.0, 255.0], "kind": "tensor",
                                                "origin": {}}]


def test_the_view_shows_each_artifact_contract(qtbot, onnx_build):
    from edgekit.gui.contract_panel import ContractPanel

    panel = ContractPanel()
    qtbot.addWidget(panel)
    panel.show_build(onnx_build)
    assert panel.artifact.count() == 1 and panel.artifact.itemText(0) == "onnx fp32 — add_fp32.onnx"
    assert panel.tabs.currentIndex() == 1
    rows = [[panel.entries.item(r, c).text() for c in range(panel.entries.columnCount())] for r in range(panel.entries.rowCount())]
    assert [row[:3] for row in rows] == [["input", "x", "tensor"], ["input", "k", "tensor"], ["output", "y", "tensor"]]
    assert rows[0][4:7] == ["(1, 4)", "float32", "range [-4.0, 4.0]"]
    assert rows[0][7] == "range: declared"
    assert panel.hashes.text().startswith("edgekit.contract/1 · source sha256 " + onnx_build.source.sha256[:16])


def test_the_convert_view_hands_the_declared_contract_to_the_build(qtbot, window, onnx_build):
    view = window.convert_view
    view.contract_panel.editor.setPlainText("inputs:\n  - name: x\n    range: [-4, 4]\n")
    assert view.options().contract.startswith("inputs:")
    view.show_build(onnx_build)
    assert view.contract_panel.artifact.count() == 1
