"""The data preview of the Convert view: what a calibration or validation path holds (``edgekit.preview_data``):
samples, arrays with shapes and value ranges, and the label histogram when the data is labelled."""
from __future__ import annotations

from typing import Any

from edgekit.gui.jobs import PreviewRequest
from edgekit.gui.plots import PALETTE, PlotCanvas
from edgekit.gui.runner import JobRunner
from edgekit.gui.widgets import item, table
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget


class LabelPlot(PlotCanvas):
    """Samples per label, largest first."""

    def __init__(self) -> None:
        super().__init__("Labels", empty="No labels in this data")

    def plot(self, labels: dict[str, int], source: str) -> None:
        if not labels:
            self.show_empty("No labels in this data: accuracy needs y / labels or class folders")
            return
        self.figure.clear()
        ax = self.figure.add_subplot()
        names = list(labels)
        ax.bar(range(len(names)), list(labels.values()), color=PALETTE[0])
        ax.set_xticks(range(len(names)), names, fontsize=8, rotation=0 if len(names) <= 12 else 90)
        ax.set_ylabel("samples")
        ax.set_title(f"Label histogram ({source}, {sum(labels.values())} samples)", loc="left", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        self.drawn = len(names)
        self.draw_idle()


class DataPreviewPanel(QWidget):
    """Previews data paths in a job process (the latest asked for wins) and fills from an ``edgekit.DataPreview``."""

    shown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.runner.succeeded.connect(self._previewed)
        self.runner.running_changed.connect(self._idle)
        self._role = ""
        self._next: tuple[str, str] | None = None
        self.summary = QLabel("Choose calibration or validation data to preview it", wordWrap=True,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.arrays = table(["array", "shape", "dtype", "min", "max", "mean"], stretch=0)
        self.labels = LabelPlot()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.arrays)
        split.addWidget(self.labels)
        split.setSizes([300, 300])
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)

    def preview(self, role: str, path: str) -> None:
        """Read what ``path`` holds in a job process; ``role`` (Calibration, Validation) titles the preview."""
        if not path:
            return
        if self.runner.running:
            self._next = (role, path)
            return
        self._role = role
        self.runner.start(PreviewRequest(path=path))

    def _idle(self, running: bool) -> None:
        if not running and self._next is not None:
            (role, path), self._next = self._next, None
            self.preview(role, path)

    def _previewed(self, data: dict[str, Any]) -> None:
        from edgekit import DataPreview

        self.show_preview(self._role, DataPreview.model_validate(data))
        self.shown.emit()

    def show_preview(self, role: str, preview: Any) -> None:
        labelled = (f"labelled ({preview.label_key}: {len(preview.labels)} classes) — accuracy is measured"
                    if preview.labelled else "no labels")
        self.summary.setText(f"<b>{role}</b> {preview.path} · {preview.kind} · {preview.samples} samples · {labelled}"
                             + (f"<br>{preview.note}" if preview.note else ""))
        self.arrays.setRowCount(0)
        for array in preview.arrays:
            row = self.arrays.rowCount()
            self.arrays.insertRow(row)
            numbers = [_number(v) for v in (array.minimum, array.maximum, array.mean)]
            cells = (item(array.name), item(str(array.shape)), item(array.dtype), *(item(n, align_right=True) for n in numbers))
            for column, cell in enumerate(cells):
                self.arrays.setItem(row, column, cell)
        self.labels.plot(preview.labels, preview.label_key or "")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
