"""Small widgets shared by the views: the inline error panel, path pickers, a job progress strip."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

STATE_COLOURS = {"passed": "#1e7b34", "available": "#1e7b34", "complete": "#1e7b34", "failed": "#b3261e",
                 "error": "#b3261e", "unreachable": "#b3261e", "wrong token": "#b3261e", "partial": "#a15c00",
                 "missing": "#6b6b6b",
                 "found": "#1f5fa8", "no artifact": "#b3261e", "over budget": "#b3261e",
                 "inconclusive": "#a15c00"}


class ErrorPanel(QFrame):
    """An inline error: the library's message in bold and its hint below, dismissable; never a dialog."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorPanel")
        self.setStyleSheet("#errorPanel{background:#fdecea;border:1px solid #f5c2c0;border-radius:6px}"
                           "#errorPanel QLabel{color:#611a15}")
        self.message = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet("font-weight:600")
        self.hint = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(text="✕", autoRaise=True, toolTip="Dismiss")
        close.clicked.connect(self.clear)
        text = QVBoxLayout()
        text.addWidget(self.message)
        text.addWidget(self.hint)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 8, 8, 8)
        row.addLayout(text, 1)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_error(self, message: str, hint: str = "") -> None:
        self.message.setText(message)
        self.hint.setText(f"Hint: {hint}" if hint else "")
        self.hint.setVisible(bool(hint))
        self.show()

    def clear(self) -> None:
        self.message.clear()
        self.hint.clear()
        self.hide()


class PathPicker(QWidget):
    """A path field with a Browse button: a file (``mode='file'``), a folder (``'dir'``) or a file to save."""

    changed = Signal(str)

    def __init__(self, caption: str, mode: str = "file", filter: str = "", placeholder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption, self.mode, self.filter = caption, mode, filter
        self.edit = QLineEdit(placeholderText=placeholder, clearButtonEnabled=True)
        self._emitted = ""
        self.edit.editingFinished.connect(self._edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def path(self) -> str:
        return self.edit.text().strip()

    def _edited(self) -> None:
        """Editing finished (Enter or focus out): ``changed`` only when the path is not the one last announced."""
        if self.path() != self._emitted:
            self._emitted = self.path()
            self.changed.emit(self._emitted)

    def set_path(self, path: str) -> None:
        self.edit.setText(path)
        self._emitted = self.path()
        self.changed.emit(self._emitted)

    def browse(self) -> None:
        if self.mode == "dir":
            chosen = QFileDialog.getExistingDirectory(self, self.caption, self.path())
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self.caption, self.path(), self.filter)
        if chosen:
            self.set_path(chosen)


class JobStrip(QWidget):
    """Progress of a running job: the stage, a bar and a Cancel button."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage = QLabel("Ready")
        self.stage.setStyleSheet("color:#444")
        self.bar = QProgressBar(textVisible=False, maximumHeight=8, maximum=1000)
        self.cancel = QPushButton("Cancel", enabled=False)
        self.cancel.clicked.connect(self.cancel_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.stage, 1)
        row.addWidget(self.cancel)
        layout.addLayout(row)
        layout.addWidget(self.bar)

    def started(self, text: str) -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 0)  # busy until the first fraction arrives
        self.cancel.setEnabled(True)

    def update(self, stage: str, fraction: float, message: str) -> None:
        self.stage.setText(message or stage)
        if fraction >= 0:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(fraction * 1000))

    def finished(self, text: str) -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.cancel.setEnabled(False)


def heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-size:16pt;font-weight:600;margin-bottom:4px")
    return label


def item(text: str, state: str | None = None, align_right: bool = False, tooltip: str = "") -> QTableWidgetItem:
    """A read-only table cell, coloured by ``state`` when given."""
    cell = QTableWidgetItem(text)
    cell.setFlags(cell.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if state in STATE_COLOURS:
        from PySide6.QtGui import QColor

        cell.setForeground(QColor(STATE_COLOURS[state]))
    if align_right:
        cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tooltip:
        cell.setToolTip(tooltip)
    return cell


def table(columns: list[str], stretch: int | None = None) -> QTableWidget:
    """A read-only, row-selecting table with ``columns``; column ``stretch`` takes the spare width."""
    from PySide6.QtWidgets import QAbstractItemView, QHeaderView

    widget = QTableWidget(0, len(columns))
    widget.setHorizontalHeaderLabels(columns)
    widget.verticalHeader().hide()
    widget.setAlternatingRowColors(True)
    widget.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    header = widget.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    if stretch is not None:
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return widget


def human_size(size: int | None) -> str:
    """Bytes as people read them (the CLI's formatting)."""
    if size is None:
        return "-"
    from edgekit.console import human_size as cli_size

    return cli_size(size)


class ColumnPriorities(QObject):
    """Hides a table's least important columns (``hide_first``, in that order) while they do not fit its width,
    and shows them again when there is room: the columns that matter never hide behind a scrollbar."""

    def __init__(self, widget: QTableWidget, hide_first: tuple[int, ...]) -> None:
        super().__init__(widget)
        self.widget, self.hide_first = widget, hide_first
        widget.viewport().installEventFilter(self)
        widget.model().rowsInserted.connect(self._rows_inserted)
        widget.model().modelReset.connect(self.fit)

    def _rows_inserted(self, *_: object) -> None:
        self.fit()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False

    def fit(self) -> None:
        """Show every column, then hide the least important ones until the rest fit the visible width."""
        from shiboken6 import isValid

        if not isValid(self.widget):  # the table is being destroyed
            return
        header = self.widget.horizontalHeader()
        for column in range(self.widget.columnCount()):
            header.setSectionHidden(column, False)
        self.widget.resizeColumnsToContents()
        room = self.widget.viewport().width()
        for column in self.hide_first:
            if self._needed() <= room:
                break
            header.setSectionHidden(column, True)

    def _needed(self) -> int:
        header = self.widget.horizontalHeader()
        return sum(max(header.sectionSizeHint(c), self.widget.sizeHintForColumn(c))
                   for c in range(self.widget.columnCount()) if not header.isSectionHidden(c))

    def hidden(self) -> list[int]:
        return [c for c in range(self.widget.columnCount()) if self.widget.horizontalHeader().isSectionHidden(c)]
