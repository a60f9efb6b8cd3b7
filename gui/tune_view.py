"""The Tune view: pick the model, target, objectives and constraints, run ``edgekit.tune`` in the job process and
watch each ended trial arrive in the table and on the latency-vs-accuracy scatter (the front highlighted);
cancel (the study keeps every ended trial) and resume, promote a front point to the build folder."""
from __future__ import annotations

from typing import Any

from edgekit.gui.jobs import PromoteRequest, TuneRequest, TuneSettings
from edgekit.gui.runner import JobRunner
from edgekit.gui.tune_form import TuneForm
from edgekit.gui.tune_plot import TunePlot
from edgekit.gui.widgets import ErrorPanel, JobStrip, heading, human_size, item, table
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

import edgekit

COLUMNS = ["trial", "configuration", "state", "latency ms", "95% interval", "accuracy", "size", "reason / constraints"]
FRONT_BACKGROUND, FAILED_FOREGROUND = "#e6f4ea", "#8a8a8a"
STOP_GRACE_MS = 20_000  # a cancel lets the trial in flight end this long; then it is killed (and redone on resume)


class TuneView(QWidget):
    """One study at a time: its trials in a table and a scatter, updated as each trial ends."""

    status_message = Signal(str)

    def __init__(self, profiles: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any = None  # the study so far (edgekit.TuneResult)
        self.promoted: Any = None  # the Build a promotion published
        self.arrivals = 0  # trial messages received by the running job
        self._request: Any = None
        self.runner = JobRunner(self, leader_only=True, grace_ms=STOP_GRACE_MS)
        self.form = TuneForm(profiles)
        self.run_button = QPushButton("Run tune")
        self.run_button.clicked.connect(self.run)
        self.promote_button = QPushButton("Promote selected point", enabled=False)
        self.promote_button.setToolTip("publish the selected trial's build (artifact, manifest, plan) as the build folder")
        self.promote_button.clicked.connect(self.promote_selected)
        self.error = ErrorPanel()
        self.job = JobStrip()
        self.job.cancel_requested.connect(self.cancel)
        self.summary = QLabel("No study yet", wordWrap=True)
        self.plot = TunePlot()
        self.table = table(COLUMNS, stretch=len(COLUMNS) - 1)
        self.table.itemSelectionChanged.connect(self._selection_changed)

        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.promote_button)
        buttons.addStretch(1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.table)
        splitter.setSizes([380, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading("Tune"))
        top = QHBoxLayout()
        top.addWidget(self.form, 1)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.job)
        layout.addWidget(self.error)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        self.runner.progress.connect(self.job.update)
        self.runner.trial.connect(self._trial)
        self.runner.succeeded.connect(self._succeeded)
        self.runner.failed.connect(self._failed)
        self.runner.cancelled.connect(self._cancelled)
        self.runner.running_changed.connect(self._running)

    # -- running ---------------------------------------------------------------------------------------

    def run(self) -> bool:
        """Start (or resume: the same build folder and settings) the study; False when refused."""
        self.error.clear()
        try:
            settings = self.form.settings()
        except ValueError as exc:
            self.error.show_error(f"a constraint is not valid: {exc}", "leave it empty for none, or type a number")
            return False
        problem = _missing(settings)
        if problem:
            self.error.show_error(*problem)
            return False
        self.arrivals = 0
        self._request = TuneRequest(settings=settings)
        if not self.runner.start(self._request):
            return False
        self.show_existing(settings.output_dir)  # a resumed study: its trials at once, before a new one ends
        self.job.started(f"tuning {settings.model} for {settings.target}: {settings.trials} trials")
        self.status_message.emit("tune started")
        return True

    def cancel(self) -> None:
        """Stop asking for trials: the one in flight ends (or is killed after a grace period and redone on resume)."""
        if self.runner.running:
            self.job.stage.setText("stopping: the trial in flight ends, the study keeps every ended trial")
            self.runner.cancel()

    def promote_selected(self) -> bool:
        number = self.selected_trial()
        if number is None or self.result is None:
            return False
        return self.promote(number)

    def promote(self, number: int) -> bool:
        """Publish trial ``number``'s build as the study's build folder (``edgekit.select_trial``)."""
        self.error.clear()
        self._request = PromoteRequest(trial=number, output_dir=self.result.output_dir)
        if not self.runner.start(self._request):
            return False
        self.job.started(f"promoting trial {number} to {self.result.output_dir}")
        return True

    def _running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self._selection_changed()

    def _trial(self, number: int, data: dict[str, Any]) -> None:
        self.arrivals += 1
        self.show_result(edgekit.TuneResult.model_validate(data))
        self.status_message.emit(f"trial {number} ended")

    def _succeeded(self, data: Any) -> None:
        if isinstance(self._request, PromoteRequest):
            self.promoted = edgekit.Build.model_validate(data)
            text = f"trial {self._request.trial} promoted to {self.promoted.output_dir}"
            self.job.finished(text)
            self.status_message.emit(text)
            return
        self.show_result(edgekit.TuneResult.model_validate(data))
        self.job.finished(f"Tune finished: {self.ended_trials()} ended trials")
        self.run_button.setText("Run tune")
        self.status_message.emit("tune finished")

    def _failed(self, message: str, hint: str) -> None:
        self.job.finished("Failed")
        self.error.show_error(message, hint)

    def _cancelled(self, _message: str) -> None:
        kept = self.ended_trials()
        self.job.finished(f"Stopped: {kept} ended trials kept in the study; Resume continues it")
        self.run_button.setText("Resume tune")
        self.status_message.emit("tune stopped")

    # -- showing ---------------------------------------------------------------------------------------

    def ended_trials(self) -> int:
        return 0 if self.result is None else sum(r.state in ("complete", "failed") for r in self.result.trials)

    def show_result(self, result: Any) -> None:
        """Show the study so far: the table (front rows highlighted, failed rows greyed) and the scatter."""
        selected = self.selected_trial()
        self.result = result
        front = {r.number for r in result.front}
        self.table.setRowCount(0)
        for record in result.trials:
            self._add_row(record, record.number in front)
            if record.number == selected:
                self.table.selectRow(self.table.rowCount() - 1)
        self.plot.plot(result)
        s = result.summary()
        self.summary.setText(f"{s['trials']} trials of a space of {result.space_size}: {s['complete']} complete, "
                             f"{s['failed']} failed, {s['feasible']} meet the constraints; front: "
                             f"{', '.join(map(str, s['front'])) or 'none yet'}"
                             + (f"; fastest: trial {s['fastest']}" if s["fastest"] is not None else ""))

    def _add_row(self, record: Any, on_front: bool) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        m, b = record.measurement, record.build
        interval = record.interval
        accuracy = record.values.get("accuracy")
        reason = record.reason or "; ".join(record.violations)
        state = f"{record.state} (front)" if on_front else record.state
        cells = [item(str(record.number), align_right=True), item(record.config.label()),
                 item(state, record.state if record.state in ("complete", "failed") else None),
                 item(f"{m.median_ms:.4g}" if m and m.median_ms is not None else "-", align_right=True),
                 item(f"[{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "-", align_right=True),
                 item(f"{accuracy:.2%}" if accuracy is not None else "-", align_right=True),
                 item(human_size(b.size_bytes) if b else "-", align_right=True), item(reason, tooltip=reason)]
        for column, cell in enumerate(cells):
            cell.setData(Qt.ItemDataRole.UserRole, record.number)
            if on_front:
                cell.setBackground(QColor(FRONT_BACKGROUND))
            elif record.state != "complete" and column != 2:
                cell.setForeground(QColor(FAILED_FOREGROUND))
            self.table.setItem(row, column, cell)

    def selected_trial(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def _selection_changed(self) -> None:
        number = self.selected_trial()
        record = None if number is None or self.result is None else self.result.trial(number)
        self.promote_button.setEnabled(not self.runner.running and record is not None and record.state == "complete")

    def set_settings(self, settings: TuneSettings) -> None:
        """Fill the form (remembered settings, a project) and show the study already kept beside its build folder."""
        self.form.set_settings(settings)
        if not self.runner.running:
            self.show_existing(settings.output_dir)

    def show_existing(self, output_dir: str) -> bool:
        """Show the study a run left beside ``output_dir`` (its tune.json); False when there is none to show."""
        if not output_dir:
            return False
        try:
            result = edgekit.TuneResult.load(output_dir)
        except (edgekit.EdgekitError, ValueError, OSError):  # none yet, or written by another version: nothing shown
            return False
        self.show_result(result)
        self.status_message.emit(f"study beside {output_dir}: {self.ended_trials()} ended trials")
        return True


def _missing(settings: TuneSettings) -> tuple[str, str] | None:
    """What the form lacks before a tune can start, as message and hint."""
    if not settings.model:
        return "no model chosen", "pick the model file to tune"
    if not settings.output_dir:
        return "no build folder chosen", "pick the folder a point is promoted to; the study is kept beside it"
    if not settings.objectives:
        return "no objective chosen", "tick at least one of latency, accuracy, size, memory"
    return None
