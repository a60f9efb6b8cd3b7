"""The Tune view's settings: model, target, objectives, constraints, the search and the measurement."""
from __future__ import annotations

from typing import Any

from edgekit.gui.jobs import TuneSettings
from edgekit.gui.widgets import PathPicker
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

MODEL_FILTER = "Models (*.keras *.h5 *.onnx *.pt *.pt2);;All files (*)"
DATA_FILTER = "Data (*.npy *.npz);;All files (*)"
OBJECTIVES = ("latency", "accuracy", "size", "memory")
#: constraint key -> (label, unit shown, factor from the field to edgekit's unit)
CONSTRAINTS = {"max_latency_ms": ("max latency", "ms", 1.0), "min_accuracy": ("min accuracy", "%", 0.01),
               "max_size_bytes": ("max size", "KB", 1024.0), "min_cosine": ("min cosine", "", 1.0)}


def _row(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget)
    row.addStretch(1)
    return holder


class TuneForm(QWidget):
    """What ``edgekit.tune`` is asked: ``settings()`` reads it, ``set_settings`` restores it."""

    def __init__(self, profiles: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profiles = {p.name: p for p in profiles}
        self.model = PathPicker("Choose a model", filter=MODEL_FILTER, placeholder="the model file to tune")
        self.target = QComboBox()
        for name, profile in self.profiles.items():
            self.target.addItem(f"{name} ({profile.device_class})", name)
        self.target.setCurrentIndex(max(0, self.target.findData(TuneSettings().target)))
        self.format_boxes = {f: QCheckBox(f) for f in ("tflite", "onnx", "openvino", "executorch")}
        self.target.currentIndexChanged.connect(self._target_changed)
        self.calibration = PathPicker("Calibration data", filter=DATA_FILTER, placeholder="for int8: .npy / .npz")
        self.validation = PathPicker("Validation data", filter=DATA_FILTER, placeholder="default: held out of the calibration")
        self.output_dir = PathPicker("Build folder", mode="dir",
                                     placeholder="a point is promoted here; the study lives in FOLDER.tune beside it")
        self.objective_boxes = {o: QCheckBox(o, checked=o in TuneSettings().objectives) for o in OBJECTIVES}
        self.constraint_fields = {key: QLineEdit(placeholderText="none", minimumWidth=52, maximumWidth=80,
                                            toolTip=f"{label} ({unit or '0..1'}); empty: none")
                                  for key, (label, unit, _) in CONSTRAINTS.items()}
        self.trials = QSpinBox(minimum=1, maximum=500, value=TuneSettings().trials)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.runs = QSpinBox(minimum=1, maximum=100_000, value=TuneSettings().runs)
        self.min_seconds = QDoubleSpinBox(minimum=0.0, maximum=600.0, value=TuneSettings().min_seconds, singleStep=0.5,
                                          suffix=" s")

        inputs = QGroupBox("Model and target")
        form = QFormLayout(inputs)
        form.addRow("Model", self.model)
        form.addRow("Target", self.target)
        form.addRow("Formats", _row(*self.format_boxes.values()))
        form.addRow("Calibration", self.calibration)
        form.addRow("Validation", self.validation)
        form.addRow("Build folder", self.output_dir)
        search = QGroupBox("Search")
        grid = QFormLayout(search)
        grid.addRow("Objectives", _row(*self.objective_boxes.values()))
        for key, (label, unit, _) in CONSTRAINTS.items():  # one row each: the form stays narrow (1024 px windows)
            grid.addRow(label, _row(self.constraint_fields[key], QLabel(unit)))
        grid.addRow("Trials", _row(self.trials, QLabel("seed"), self.seed))
        grid.addRow("Measurement", _row(QLabel("at least"), self.runs, QLabel("timed runs and"), self.min_seconds))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(inputs, 1)
        layout.addWidget(search, 1)
        self._target_changed()

    def _target_changed(self) -> None:
        profile = self.profiles.get(self.target.currentData())
        for fmt, box in self.format_boxes.items():
            box.setEnabled(profile is not None and fmt in profile.formats)
            box.setChecked(profile is not None and fmt in profile.formats)

    def constraints(self, strict: bool = True) -> dict[str, float]:
        """The constraints typed in, in edgekit's units; a field that is not a number raises ``ValueError`` (or is
        left out when not ``strict``)."""
        found = {}
        for key, (label, _, factor) in CONSTRAINTS.items():
            text = self.constraint_fields[key].text().strip().replace(",", ".")
            if text:
                try:
                    found[key] = float(text) * factor
                except ValueError:
                    if strict:
                        raise ValueError(f"{label}: '{text}' is not a number") from None
        return found

    def settings(self, strict: bool = True) -> TuneSettings:
        """The form as ``edgekit.tune``'s settings (``strict=False``: what can be remembered, bad numbers left out)."""
        return TuneSettings(
            model=self.model.path(), target=self.target.currentData() or "cpu-x86",
            objectives=[o for o, box in self.objective_boxes.items() if box.isChecked()],
            constraints=self.constraints(strict),
            trials=self.trials.value(), seed=self.seed.value(),
            formats=[f for f, box in self.format_boxes.items() if box.isChecked() and box.isEnabled()],
            calibration_data=self.calibration.path(), validation_data=self.validation.path(),
            output_dir=self.output_dir.path(), runs=self.runs.value(), min_seconds=self.min_seconds.value(),
        )

    def set_settings(self, settings: TuneSettings) -> None:
        self.model.edit.setText(settings.model)
        self.target.setCurrentIndex(max(0, self.target.findData(settings.target)))
        if settings.formats:
            for fmt, box in self.format_boxes.items():
                box.setChecked(fmt in settings.formats)
        for objective, box in self.objective_boxes.items():
            box.setChecked(objective in settings.objectives)
        for key, (_, _, factor) in CONSTRAINTS.items():
            value = settings.constraints.get(key)
            self.constraint_fields[key].setText("" if value is None else f"{value / factor:g}")
        self.trials.setValue(settings.trials)
        self.seed.setValue(settings.seed)
        self.calibration.edit.setText(settings.calibration_data)
        self.validation.edit.setText(settings.validation_data)
        self.output_dir.edit.setText(settings.output_dir)
        self.runs.setValue(settings.runs)
        self.min_seconds.setValue(settings.min_seconds)
