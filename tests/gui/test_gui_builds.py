"""Builds are never lost: a folder holding another build is replaced only when asked, or kept aside whole;
a cancelled build leaves the folder as it was and says so."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _listed(folder: Path) -> set[str]:
    """The files a build folder's manifest lists (artifacts with their side files, the contract's snippets), and
    the manifest itself."""
    manifest = json.loads((folder / "edgekit-manifest.json").read_text())
    listed = {"edgekit-manifest.json"}
    for artifact in manifest["artifacts"]:
        listed.update(Path(f).name for f in artifact["files"])
    listed.update(Path(name).as_posix() for name in manifest["config"]["run"].get("snippets", {}))
    return listed


def _build(view, qtbot, target: str) -> None:
    view.target.setCurrentIndex(view.target.findData(target))
    for name, box in view.format_boxes.items():
        box.setChecked(name == "onnx")
    for name, box in view.precision_boxes.items():
        box.setChecked(name == "fp32")
    with qtbot.waitSignal(view.build_ready, timeout=300_000):
        assert view.run(), view.error.message.text()


@pytest.mark.slow
def test_another_target_into_the_same_folder_asks_and_keeps_the_old_build_aside(window, qtbot, digits_keras_file, tmp_path):
    view = window.convert_view
    window.open_paths([str(digits_keras_file)])
    qtbot.waitUntil(lambda: view.io_table.rowCount() == 2, timeout=120_000)
    out = tmp_path / "shared"
    view.output_dir.edit.setText(str(out))
    asked: list[tuple[str, str]] = []
    view.ask_replace = lambda folder, previous: asked.append((folder, previous.target)) or "aside"
    _build(view, qtbot, "cpu-x86")
    assert asked == []  # an empty folder: nothing to ask
    first = _files(out)
    assert first == _listed(out) and "edgekit-manifest.json" in first

    _build(view, qtbot, "cpu-arm64")
    assert asked == [(str(out), "cpu-x86")]
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("shared-cpu-x86-")]
    assert _files(aside) == first  # the first build, whole
    assert json.loads((aside / "edgekit-manifest.json").read_text())["target"] == "cpu-x86"
    assert json.loads((out / "edgekit-manifest.json").read_text())["target"] == "cpu-arm64"
    assert _files(out) == _listed(out)  # exactly one consistent build, no orphan of the first

    view.ask_replace = lambda folder, previous: "cancel"
    view.target.setCurrentIndex(view.target.findData("cpu-x86"))
    assert not view.run() and not view.converter.running  # refused: nothing started, nothing touched
    assert json.loads((out / "edgekit-manifest.json").read_text())["target"] == "cpu-arm64"

    second = _files(out)
    view.ask_replace = lambda folder, previous: "replace"
    with qtbot.waitSignal(view.converter.progress, timeout=120_000,
                          check_params_cb=lambda stage, fraction, message: stage.startswith("convert")):
        assert view.run()
    with qtbot.waitSignal(view.converter.cancelled, timeout=30_000):
        qtbot.mouseClick(view.job.cancel, Qt.MouseButton.LeftButton)
    assert view.job.stage.text() == "Cancelled: nothing half-written was kept; shared still holds the previous build"
    assert _files(out) == second and json.loads((out / "edgekit-manifest.json").read_text())["target"] == "cpu-arm64"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".shared")) == []  # no staging or lock left

    # both builds are in the history, readable after the folder was replaced, and side by side
    history = window.history_view
    runs = [r for r in history.shown if r.kind == "build"]
    assert [r.target for r in runs] == ["cpu-arm64", "cpu-x86"]  # newest first
    history.compare_rows([history.shown.index(runs[0]), history.shown.index(runs[1])])
    assert history.comparison.rowCount() == 1 and history.comparison.item(0, 0).text() == "onnx fp32"
    cells = [history.comparison.item(0, c).text() for c in (1, 2)]
    assert all(" KB · cos 1.00000 · passed" in c or "cos 0.9999" in c for c in cells), cells
    history.reopen(history.shown.index(runs[1]))  # the cpu-x86 build: from its kept manifest
    assert window.convert_view.build.target == "cpu-x86" and window.stack.currentWidget() is window.convert_view
