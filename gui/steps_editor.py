"""The optimization-step editor of the Convert view: prune / QAT / distill steps in order, each with its options,
and the labelled training and validation data they need."""
from __future__ import annotations

from typing import Any

from edgekit.gui.widgets import PathPicker
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

# The options the editor shows per kind: (field, label, widget kind, minimum, maximum, step)
FIELDS: dict[str, tuple[tuple[str, str, str, float, float, float], ...]] = {
    "prune": (("sparsity", "Sparsity", "float", 0.05, 0.95, 0.05), ("structured", "Remove whole channels", "bool", 0, 0, 0),
              ("epochs", "Fine-tune epochs", "int", 0, 1000, 1)),
    "qat": (("epochs", "Epochs", "int", 0, 1000, 1),),
    "distill": (("teacher", "Teacher model", "path", 0, 0, 0),
                ("student_width", "Student width (no teacher)", "float", 0.1, 0.9, 0.05),
                ("temperature", "Temperature", "float", 0.5, 100, 0.5), ("alpha", "Soft-target weight α", "float", 0, 1, 0.05),
                ("epochs", "Epochs", "int", 0, 1000, 1)),
}
TITLES = {"prune": "Prune", "qat": "Quantization-aware training", "distill": "Distill"}


def default_step(kind: str) -> dict[str, Any]:
    """The library's defaults for a step of ``kind`` as a plain dict (with its ``kind``)."""
    import edgekit

    options = getattr(edgekit, kind)().model_dump(mode="json")
    if kind == "distill":
        options["teacher"] = ""
    return options


def describe(step: dict[str, Any]) -> str:
    kind = step["kind"]
    if kind == "prune":
        return f"Prune {step['sparsity']:.0%}{' (channels)' if step.get('structured') else ''}, {step['epochs']} epochs"
    if kind == "qat":
        return f"Quantization-aware training, {step['epochs']} epochs"
    teacher = step.get("teacher") or f"student at {step['student_width']:.0%} width"
    return f"Distill ({teacher.rsplit('/', 1)[-1]}), T={step['temperature']:g}, {step['epochs']} epochs"


class StepsEditor(QWidget):
    """Steps run in list order before conversion; their options go to ``edgekit.prune/qat/distill``."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[dict[str, Any]] = []
        self.list = QListWidget(maximumHeight=90)
        self.list.currentRowChanged.connect(self._show_form)
        buttons = QHBoxLayout()
        for kind in ("prune", "qat", "distill"):
            button = QPushButton(f"+ {TITLES[kind] if kind != 'qat' else 'QAT'}")
            button.clicked.connect(lambda _=False, k=kind: self.add(k))
            buttons.addWidget(button)
        self.remove_button = QPushButton("Remove", enabled=False)
        self.remove_button.clicked.connect(self.remove_current)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.train_data = PathPicker("Training data", filter="NumPy archives (*.npz)", placeholder="train .npz with x and y")
        self.val_data = PathPicker("Validation data", filter="NumPy archives (*.npz)",
                                   placeholder="val .npz with x and y (optional)")
        data = QFormLayout()
        data.addRow("Training data", self.train_data)
        data.addRow("Validation data", self.val_data)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.list)
        layout.addWidget(self.form_host)
        layout.addLayout(data)
        self._refresh()

    def set_steps(self, steps: list[dict[str, Any]]) -> None:
        self.steps = [dict(s) for s in steps]
        self._refresh()

    def add(self, kind: str) -> None:
        self.steps.append(default_step(kind))
        self._refresh(len(self.steps) - 1)
        self.changed.emit()

    def remove_current(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.steps):
            del self.steps[row]
            self._refresh(min(row, len(self.steps) - 1))
            self.changed.emit()

    def _refresh(self, select: int = -1) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for step in self.steps:
            self.list.addItem(describe(step))
        self.list.blockSignals(False)
        self.list.setVisible(bool(self.steps))
        self.train_data.setEnabled(bool(self.steps))
        self.val_data.setEnabled(bool(self.steps))
        self.list.setCurrentRow(select)
        self._show_form(select)

    def _show_form(self, row: int) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.remove_button.setEnabled(0 <= row < len(self.steps))
        self.form_host.setVisible(0 <= row < len(self.steps))
        if not 0 <= row < len(self.steps):
            return
        step = self.steps[row]
        for name, text, kind, low, high, stride in FIELDS[step["kind"]]:
            self.form.addRow(text, self._field(row, name, kind, low, high, stride))

    def _field(self, row: int, name: str, kind: str, low: float, high: float, stride: float) -> QWidget:
        step = self.steps[row]

        def set_value(value: Any) -> None:
            step[name] = value
            self.list.item(row).setText(describe(step))
            self.changed.emit()

        if kind == "bool":
            widget = QCheckBox(checked=bool(step.get(name)))
            widget.toggled.connect(set_value)
        elif kind == "int":
            widget = QSpinBox(minimum=int(low), maximum=int(high), value=int(step.get(name) or 0))
            widget.valueChanged.connect(set_value)
        elif kind == "float":
            widget = QDoubleSpinBox(minimum=low, maximum=high, singleStep=stride, decimals=2, value=float(step.get(name) or 0))
            widget.valueChanged.connect(set_value)
        else:
            widget = PathPicker("Teacher model", placeholder="optional: a trained, larger model")
            widget.edit.setText(step.get(name) or "")
            widget.changed.connect(set_value)
        return widget
