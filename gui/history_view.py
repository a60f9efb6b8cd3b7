"""The History view: every build and profiling run of the project, reopened with a double click or compared
side by side (sizes, cosine, accuracy, verdicts, median latency per artifact)."""
from __future__ import annotations

from typing import Any

from edgekit.gui.history import History, Run, compare, load_run
from edgekit.gui.widgets import ErrorPanel, heading, item, table
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget


class HistoryView(QWidget):
    """Lists ``history``'s runs; ``open_build`` / ``open_reports`` ask the window to show one."""

    status_message = Signal(str)
    open_build = Signal(object)  # edgekit.Build
    open_reports = Signal(list)  # [edgekit.ProfileReport]

    def __init__(self, history: History, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.shown: list[Run] = []
        self.where = QLabel(wordWrap=True)
        self.where.setStyleSheet("color:#555")
        self.table = table(["when", "kind", "model / artifacts", "target / devices", "result"], stretch=2)
        self.table.setSelectionMode(self.table.SelectionMode.ExtendedSelection)
        self.table.doubleClicked.connect(lambda index: self.reopen(index.row()))
        self.comparison = table(["artifact"], stretch=None)
        self.error = ErrorPanel()
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(lambda: self.reopen(self._selected()[0]) if self._selected() else None)
        self.compare_button = QPushButton("Compare selected")
        self.compare_button.clicked.connect(lambda: self.compare_rows(self._selected()))
        buttons = QHBoxLayout()
        buttons.addWidget(self.where, 1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.compare_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.comparison)
        split.setSizes([300, 220])
        layout = QVBoxLayout(self)
        layout.addWidget(heading("History"))
        layout.addLayout(buttons)
        layout.addWidget(self.error)
        layout.addWidget(split, 1)
        self.refresh()

    def set_history(self, history: History) -> None:
        self.history = history
        self.refresh()

    def refresh(self) -> None:
        self.shown = self.history.runs()
        self.where.setText(f"{len(self.shown)} run(s) kept in {self.history.root}")
        self.table.setRowCount(0)
        for run in self.shown:
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = (item(run.created), item(run.kind), item(run.model, tooltip=run.output_dir or run.model),
                     item(run.target or ", ".join(run.devices)), item(run.summary))
            for column, cell in enumerate(cells):
                self.table.setItem(row, column, cell)

    def _selected(self) -> list[int]:
        return sorted({index.row() for index in self.table.selectionModel().selectedRows()})

    def reopen(self, row: int) -> None:
        """Show run ``row`` again: a build in the Convert view, a profiling run in the Profile view."""
        from edgekit import EdgekitError

        self.error.clear()
        run = self.shown[row]
        try:
            loaded = load_run(run)
        except EdgekitError as exc:
            self.error.show_error(exc.message, exc.hint)
            return
        (self.open_build if run.kind == "build" else self.open_reports).emit(loaded)
        self.status_message.emit(f"reopened the {run.kind} of {run.created}")

    def compare_rows(self, rows: list[int]) -> None:
        """Side by side: one row per artifact, one column per chosen run."""
        from edgekit import EdgekitError

        self.error.clear()
        if len(rows) < 2:
            self.error.show_error("choose two or more runs to compare", "select rows with Ctrl or Shift")
            return
        try:
            columns, rows_text = compare([self.shown[r] for r in rows])
        except EdgekitError as exc:
            self.error.show_error(exc.message, exc.hint)
            return
        _fill(self.comparison, ["artifact", *columns], rows_text)


def _fill(widget: Any, columns: list[str], rows: list[list[str]]) -> None:
    widget.clear()
    widget.setColumnCount(len(columns))
    widget.setHorizontalHeaderLabels(columns)
    widget.setRowCount(0)
    for values in rows:
        row = widget.rowCount()
        widget.insertRow(row)
        for column, text in enumerate(values):
            widget.setItem(row, column, item(text))
