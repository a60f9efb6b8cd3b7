"""The Convert view: pick a model, a target and options; run ``edgekit.convert`` in a job process; show
per-artifact results, budgets and compatibility findings."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.gui.build_folder import Choice, describe, existing_build, is_other_build, keep_aside
from edgekit.gui.convert_tabs import add_tabs
from edgekit.gui.convert_text import (  # noqa: F401 (optimization_summary: part of this view's interface)
    PRECISIONS,
    artifact_status,
    budgets_item,
    compatible_choices,
    default_output_dir,
    fmt,
    optimization_summary,
    target_facts,
    with_interval,
)
from edgekit.gui.jobs import ConvertOptions, ConvertRequest, DataRequest, InspectRequest, convert_arguments
from edgekit.gui.runner import JobRunner
from edgekit.gui.steps_editor import StepsEditor
from edgekit.gui.widgets import ColumnPriorities, ErrorPanel, JobStrip, PathPicker, heading, human_size, item, table
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from edgekit import FORMATS

DATA_FILTER = "Data (*.npy *.npz);;All files (*)"


class ConvertView(QWidget):
    """Collects the options of a build and shows its results; the build runs in a job process."""

    build_ready = Signal(object)  # edgekit.Build
    status_message = Signal(str)
    profile_requested = Signal(list)  # artifact paths
    paths_dropped = Signal(list)  # models, build folders or project files: the window decides what each is

    def __init__(self, profiles: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profiles = {p.name: p for p in profiles}
        self.build: Any = None
        self.source: Any = None
        self.inspector = JobRunner(self)
        self.converter = JobRunner(self)
        self._inspect_next: str | None = None  # a model to inspect once the superseded inspection has ended
        self._auto_output = ""  # the output folder chosen for the model and target (replaced when they change)
        self._target_shown: str | None = None
        self._writing = ""  # the output folder of the running build
        self.setAcceptDrops(True)

        splitter = QSplitter()
        splitter.addWidget(self._options_panel())
        splitter.addWidget(self._results_panel())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 900])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self.inspector.succeeded.connect(self._inspected)
        self.inspector.failed.connect(self._inspect_failed)
        self.inspector.running_changed.connect(self._inspector_idle)
        self.converter.progress.connect(self.job.update)
        self.converter.succeeded.connect(self._converted)
        self.converter.failed.connect(self._convert_failed)
        self.converter.cancelled.connect(self._convert_cancelled)
        self.converter.running_changed.connect(lambda running: self.run_button.setEnabled(not running))
        self._target_changed()

    def _options_panel(self) -> QScrollArea:
        """The left side: model, target, build options, optimization steps and the Convert button."""
        # -- model
        self.model = PathPicker("Choose a model", filter="Models (*.keras *.h5 *.onnx *.pt *.pt2);;All files (*)",
                                placeholder="drop a model here, or browse")
        self.model.changed.connect(self._model_changed)
        self.model_info = QLabel("No model yet: .keras, .h5, SavedModel, .onnx, TorchScript .pt or .pt2",
                                 wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_info.setStyleSheet("color:#555")
        self.io_table = table(["", "name", "shape", "dtype", "layout"], stretch=1)
        self.io_table.setMaximumHeight(130)
        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        model_layout.addWidget(self.model)
        model_layout.addWidget(self.model_info)
        model_layout.addWidget(self.io_table)

        # -- target
        self.target = QComboBox()
        for name, profile in self.profiles.items():
            self.target.addItem(f"{name} ({profile.device_class})", name)
        self.target.setCurrentIndex(max(0, self.target.findData(ConvertOptions().target)))
        self.target.currentIndexChanged.connect(self._target_changed)
        self.target_facts = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.target_facts.setStyleSheet("color:#333")
        target_box = QGroupBox("Target device")
        target_layout = QVBoxLayout(target_box)
        target_layout.addWidget(self.target)
        target_layout.addWidget(self.target_facts)

        # -- build options
        self.format_boxes = {f: QCheckBox(f) for f in FORMATS}
        self.precision_boxes = {p: QCheckBox(p) for p in PRECISIONS}
        self.calibration = PathPicker("Calibration data", filter=DATA_FILTER,
                                      placeholder="needed for int8: .npy, .npz or image folder")
        self.validation = PathPicker("Validation data", filter=DATA_FILTER,
                                     placeholder="labelled (.npz x/y, class folders): accuracy too; default: held out")
        self.output_dir = PathPicker("Output folder", mode="dir", placeholder="where the artifacts go")
        self.force = QCheckBox("Build despite broken hard limits")
        self.force.setToolTip("Build even if the model breaks a hard limit of the target")
        options_box = QGroupBox("Build")
        form = QFormLayout(options_box)
        form.addRow("Formats", _row(self.format_boxes.values()))
        form.addRow("Precision", _row(self.precision_boxes.values()))
        form.addRow("Calibration", self.calibration)
        form.addRow("Validation", self.validation)
        form.addRow("Output folder", self.output_dir)
        form.addRow("", self.force)

        self.steps = StepsEditor()
        steps_box = QGroupBox("Optimization before export (optional)")
        QVBoxLayout(steps_box).addWidget(self.steps)

        self.run_button = QPushButton("Convert")
        self.run_button.setDefault(True)
        self.run_button.setMinimumHeight(34)
        self.run_button.setStyleSheet("QPushButton{font-weight:600}")
        self.run_button.clicked.connect(self.run)
        self.check_data_button = QPushButton("Check data")
        self.check_data_button.setToolTip("Report on the calibration data before quantizing (edgekit data)")
        self.check_data_button.clicked.connect(self.check_data)
        form.addRow("", self.check_data_button)
        self.data_checker = JobRunner(self)
        self.data_checker.succeeded.connect(self._data_checked)
        self.data_checker.failed.connect(self._convert_failed)
        self.data_checker.running_changed.connect(lambda running: self.check_data_button.setEnabled(not running))

        left = QWidget()
        left_layout = QVBoxLayout(left)
        for widget in (model_box, target_box, options_box, steps_box):
            left_layout.addWidget(widget)
        left_layout.addStretch(1)
        left_layout.addWidget(self.run_button)
        scroll = QScrollArea(widgetResizable=True, minimumWidth=340)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(left)
        scroll.setMinimumWidth(max(340, left.minimumSizeHint().width() + 16))  # never clipped on the right
        return scroll

    def _results_panel(self) -> QWidget:
        """The right side: the job strip, errors, the artifacts table and the findings."""
        # -- results
        self.error = ErrorPanel()
        self.job = JobStrip()
        self.job.cancel_requested.connect(self.cancel)
        self.results = table(["format", "precision", "size", "accuracy", "cosine", "top-1 agr.", "max abs err", "budgets",
                              "status", "file"], stretch=9)
        self.results.setMinimumHeight(170)  # four artifacts in view whichever tab below is open (1024x700 up)
        self.result_columns = ColumnPriorities(self.results, hide_first=(9, 6, 7, 2, 5))  # file, max err, budgets, ...
        self.findings = table(["artifact", "severity", "where", "finding", "hint"], stretch=4)
        self.findings.setWordWrap(True)
        self.build_info = QLabel("No build yet", wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.build_info.setStyleSheet("color:#555")
        self.profile_button = QPushButton("Profile these artifacts →", enabled=False)
        self.profile_button.clicked.connect(self._profile_clicked)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(heading("Results"))
        right_layout.addWidget(self.job)
        right_layout.addWidget(self.error)
        right_layout.addWidget(self.results, 3)
        self.tabs = add_tabs(self)
        right_layout.addWidget(QLabel("<b>Findings</b> — compatibility with the target, validation and route errors; "
                                      "the calibration-data report; the data preview", wordWrap=True))
        right_layout.addWidget(self.tabs, 2)
        bottom = QHBoxLayout()
        bottom.addWidget(self.build_info, 1)
        bottom.addWidget(self.profile_button)
        right_layout.addLayout(bottom)
        return right

    # -- options ---------------------------------------------------------------------------------------

    def options(self) -> ConvertOptions:
        return ConvertOptions(
            model=self.model.path(), target=self.target.currentData() or "cpu-x86",
            formats=[f for f, box in self.format_boxes.items() if box.isChecked()],
            precisions=[p for p, box in self.precision_boxes.items() if box.isChecked()],
            calibration_data=self.calibration.path(), validation_data=self.validation.path(),
            output_dir=self.output_dir.path(), force=self.force.isChecked(), steps=self.steps.steps,
            train_data=self.steps.train_data.path(), val_data=self.steps.val_data.path(),
            contract=self.contract_panel.editor.toPlainText(),
        )

    def set_options(self, options: ConvertOptions) -> None:
        index = self.target.findData(options.target)
        if index >= 0:
            self.target.setCurrentIndex(index)
        if options.formats:
            for f, box in self.format_boxes.items():
                box.setChecked(f in options.formats)
        if options.precisions:
            for p, box in self.precision_boxes.items():
                box.setChecked(p in options.precisions)
        self.calibration.edit.setText(options.calibration_data)
        self.validation.edit.setText(options.validation_data)
        self.output_dir.edit.setText(options.output_dir)
        if options.model and options.output_dir == default_output_dir(options.model, options.target):
            self._auto_output = options.output_dir
        self.force.setChecked(options.force)
        self.steps.set_steps(options.steps)
        self.steps.train_data.edit.setText(options.train_data)
        self.steps.val_data.edit.setText(options.val_data)
        if options.model:
            self.open_model(options.model)

    def _target_changed(self) -> None:
        """Show the new target's facts; keep the chosen formats and precisions it supports (its defaults if none)."""
        profile = self.profiles.get(self.target.currentData())
        if profile is None:
            return
        first = self._target_shown is None
        self._target_shown = profile.name
        formats, precisions = compatible_choices(
            profile, [] if first else [f for f, b in self.format_boxes.items() if b.isChecked()],
            [] if first else [p for p, b in self.precision_boxes.items() if b.isChecked()])
        for f, box in self.format_boxes.items():
            box.setChecked(f in formats)
        for p, box in self.precision_boxes.items():
            box.setChecked(p in precisions)
        self.target_facts.setText(target_facts(profile))
        self._default_output()

    def _default_output(self) -> None:
        """One folder per model and target beside the model (``digits-cpu-x86-edgekit``), unless the user chose one."""
        model = self.model.path() if hasattr(self, "model") else ""
        if not model or self.output_dir.path() not in ("", self._auto_output):
            return
        self._auto_output = default_output_dir(model, self.target.currentData() or "cpu-x86")
        self.output_dir.edit.setText(self._auto_output)

    # -- model -----------------------------------------------------------------------------------------

    def open_model(self, path: str) -> None:
        """Show ``path`` as the model and inspect it in a job process."""
        self.model.set_path(path)  # announces it: leaving the field later does not read the model again

    def _model_changed(self, path: str) -> None:
        """A new model: the previous one's results, errors and folder go; it is inspected in a job process."""
        self.source = None
        self.io_table.setRowCount(0)
        self.clear_results()
        self.error.clear()
        if not path:
            return
        self._default_output()
        self.model_info.setText(f"Reading {Path(path).name} …")
        if self.inspector.running:  # its end (cancelled) is its own; this model is inspected after it
            self._inspect_next = path
            self.inspector.cancel()
            return
        self.inspector.start(InspectRequest(model=path))

    def _inspector_idle(self, running: bool) -> None:
        if not running and self._inspect_next is not None:
            path, self._inspect_next = self._inspect_next, None
            self.inspector.start(InspectRequest(model=path))

    def clear_results(self) -> None:
        """Forget the shown build (another model was opened)."""
        self.build = None
        self.results.setRowCount(0)
        self.findings.setRowCount(0)
        self.build_info.setText("No build yet")
        self.profile_button.setEnabled(False)

    def _inspected(self, data: dict[str, Any]) -> None:
        from edgekit import ModelSource, shape_text

        if self._inspect_next is not None:  # the answer about a model that is no longer the chosen one
            return
        self.error.clear()
        self.source = ModelSource.model_validate(data)
        s = self.source
        self.model_info.setText(f"<b>{s.framework}</b> model ({s.kind}) · {human_size(s.size_bytes)}"
                                + (f" · {s.task}" if s.task != "other" else "")
                                + (f"<br><span style='color:#888'>sha256 {s.sha256[:16]}…</span>" if s.sha256 else ""))
        self.io_table.setRowCount(0)
        for role, specs in (("in", s.inputs), ("out", s.outputs)):
            for spec in specs:
                row = self.io_table.rowCount()
                self.io_table.insertRow(row)
                for column, text in enumerate((role, spec.name, shape_text(spec.shape), spec.dtype, spec.layout)):
                    self.io_table.setItem(row, column, item(text))
        self.status_message.emit(f"{Path(s.path or '').name}: {len(s.inputs)} input(s), {len(s.outputs)} output(s)")

    def _inspect_failed(self, message: str, hint: str) -> None:
        if self._inspect_next is not None:
            return
        self.model_info.setText("This model could not be read.")
        self.error.show_error(message, hint)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.paths_dropped.emit(urls)  # the window opens each as what it is (model, build folder, project)
            event.acceptProposedAction()

    # -- running ---------------------------------------------------------------------------------------

    def run(self) -> bool:
        """Start a build with the current options; False (with the error shown) if they are not valid."""
        from edgekit.errors import EdgekitError

        options = self.options()
        self.error.clear()
        try:
            convert_arguments(options)  # the same checks the job makes, before starting it
            if not self._output_ready(options):
                return False
        except EdgekitError as exc:
            self.error.show_error(exc.message, exc.hint)
            return False
        except OSError as exc:
            self.error.show_error(f"the previous build could not be moved aside: {exc.strerror or exc}",
                                  "choose another output folder")
            return False
        if not self.converter.start(ConvertRequest(options=options)):
            return False
        self._writing = options.output_dir
        self.job.started(f"Converting {Path(options.model).name} for {options.target} …")
        self.status_message.emit("conversion running")
        return True

    def _output_ready(self, options: ConvertOptions) -> bool:
        """Ask before writing into a folder holding a build of another model or target; keep it aside if asked."""
        previous = existing_build(options.output_dir)
        sha256 = self.source.sha256 if self.source is not None else None
        if previous is None or not is_other_build(previous, options.model, sha256, options.target):
            return True
        choice = self.ask_replace(options.output_dir, previous)
        if choice == "aside":
            moved = keep_aside(options.output_dir, previous)
            self.status_message.emit(f"the previous build ({describe(previous)}) was kept in {moved}")
        return choice != "cancel"

    def ask_replace(self, folder: str, previous: Any) -> Choice:
        """The question before replacing another build (a dialog; tests set their own answer)."""
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Question, "The output folder holds another build",
                          f"{folder} holds the build of {describe(previous)}.\n\nA build replaces its whole folder.",
                          parent=self)
        aside = box.addButton("Keep it aside and build", QMessageBox.ButtonRole.AcceptRole)
        replace = box.addButton("Replace it", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(aside)
        box.exec()
        return "aside" if box.clickedButton() is aside else "replace" if box.clickedButton() is replace else "cancel"

    def check_data(self) -> bool:
        """Run ``edgekit.data_report`` on the model and calibration data in a job process."""
        options = self.options()
        if not options.model or not options.calibration_data:
            self.error.show_error("the data report needs a model and calibration data", "choose both, then press Check data")
            return False
        self.error.hide()
        self.data_checker.start(DataRequest(model=options.model, calibration_data=options.calibration_data,
                                            validation_data=options.validation_data, allow_unsafe=options.allow_unsafe))
        self.status_message.emit("checking the calibration data")
        return True

    def _data_checked(self, data: dict[str, Any]) -> None:
        from edgekit import DataReport

        self.data_panel.show_report(DataReport.model_validate(data))
        self.tabs.setCurrentWidget(self.data_panel)
        self.status_message.emit("data report ready")

    def cancel(self) -> None:
        self.job.stage.setText("Cancelling …")
        self.converter.cancel()

    def _converted(self, data: dict[str, Any]) -> None:
        from edgekit import Build

        build = Build.model_validate(data)
        self.show_build(build)
        passed = sum(a.passed for a in build.artifacts)
        self.job.finished(f"Done: {passed} of {len(build.artifacts) + len(build.failures)} passed")
        self.status_message.emit(f"build written to {build.output_dir}")
        self.build_ready.emit(build)

    def _convert_failed(self, message: str, hint: str) -> None:
        self.job.finished("Failed")
        self.error.show_error(message, hint)
        self.status_message.emit("conversion failed")

    def _convert_cancelled(self, message: str) -> None:
        folder = self._writing
        previous = existing_build(folder) if folder else None
        kept = f"; {Path(folder).name} still holds the previous build" if previous is not None else ""
        self.job.finished(f"Cancelled: nothing half-written was kept{kept}")
        self.status_message.emit(message)

    # -- results ---------------------------------------------------------------------------------------

    def show_build(self, build: Any) -> None:
        """Fill the results and findings tables from an ``edgekit.Build``."""
        self.build = build
        self.results.setRowCount(0)
        self.findings.setRowCount(0)
        for a in build.artifacts:
            v = a.validation
            status = artifact_status(a)
            acc = v.accuracy_check
            accuracy = with_interval(v.accuracy, (acc.low, acc.high) if acc else None, 3)
            numbers = (human_size(a.size_bytes), accuracy, with_interval(v.cosine, v.cosine_interval, 5),
                       with_interval(v.top1_agreement, v.top1_interval, 3), fmt(v.max_abs_error, 4))
            origin = f"on {v.samples} samples of {v.data_origin}" + (" (also the calibration data)" if v.on_calibration else "")
            self._add_row(self.results, (item(a.format), item(a.precision), *(item(n, align_right=True) for n in numbers),
                                         budgets_item(a), item(status, status, tooltip=origin),
                                         item(Path(a.path).name, tooltip=a.path)))
            label = f"{a.format} {a.precision}"
            if v.message:
                severity = "error" if v.status in ("failed", "error") else "fallback"
                hint = "validate on more samples, or accept inconclusive verdicts" if v.status == "inconclusive" else ""
                self._finding(label, severity, "validation", v.message, hint)
            for b in a.budgets:
                if b.status in ("failed", "inconclusive"):
                    self._finding(label, "error" if b.status == "failed" else "fallback", f"budget {b.name}", b.message, "")
            for f in a.compatibility.findings if a.compatibility else ():
                self._finding(label, f.severity, " / ".join(x for x in (f.layer, f.op) if x) or f.kind, f.message, f.hint)
        for f in build.failures:
            self._add_row(self.results, (item(f.format), item(f.precision), *(item("-") for _ in range(6)),
                                         item("no artifact", "no artifact"), item(f.error, tooltip=f.detail or f.error)))
            self._finding(f"{f.format} {f.precision}", "error", f.route, f.error, f.hint)
        self.findings.resizeRowsToContents()
        self.results.resizeRowsToContents()
        self.build_info.setText(f"Artifacts in {build.output_dir}" + optimization_summary(build.optimization))
        self.profile_button.setEnabled(bool(build.artifacts))
        self.contract_panel.show_build(build)

    def _artifact_clicked(self, row: int, _column: int = 0) -> None:
        if self.build is not None and row < len(self.build.artifacts):
            self.detail.show_artifact(self.build.artifacts[row], self.profiles[self.build.target])
            self.tabs.setCurrentWidget(self.detail)

    def _finding(self, artifact: str, severity: str, where: str, message: str, hint: str) -> None:
        colour = {"error": "error", "fallback": "partial", "change": "found"}.get(severity)
        self._add_row(self.findings, (item(artifact), item(severity, colour), item(where), item(message, tooltip=message),
                                      item(hint, tooltip=hint)))

    @staticmethod
    def _add_row(widget: Any, cells: tuple) -> None:
        row = widget.rowCount()
        widget.insertRow(row)
        for column, cell in enumerate(cells):
            widget.setItem(row, column, cell)

    def _profile_clicked(self) -> None:
        if self.build is not None:
            self.profile_requested.emit([a.path for a in self.build.artifacts])


def _row(widgets, per_row: int = 3) -> QWidget:
    """Check boxes in rows of ``per_row`` (the options panel stays narrow enough for a 1024 px window)."""
    from PySide6.QtWidgets import QGridLayout

    host = QWidget()
    layout = QGridLayout(host)
    layout.setContentsMargins(0, 0, 0, 0)
    for index, widget in enumerate(widgets):
        layout.addWidget(widget, index // per_row, index % per_row)
    layout.setColumnStretch(per_row, 1)
    return host
