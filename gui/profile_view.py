"""The Profile view: pick artifacts and devices, run ``edgekit.profile`` in a job process with live progress,
see the results table and plots, export the same JSON and HTML reports as the CLI."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.gui.jobs import DeviceChoice, ProfileRequest, ProfileSettings
from edgekit.gui.plots import ComparisonPlot, LatencyPlot, OpsPlot, label
from edgekit.gui.runner import JobRunner
from edgekit.gui.widgets import ColumnPriorities, ErrorPanel, JobStrip, PathPicker, heading, human_size, item, table
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class ProfileView(QWidget):
    """Profiles the checked artifacts on the checked devices; one ``ProfileReport`` per device."""

    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.reports: list[Any] = []
        self.tokens: dict[str, str | None] = {}
        self.runner = JobRunner(self)

        splitter = QSplitter()
        splitter.addWidget(self._inputs_panel())
        splitter.addWidget(self._results_panel())
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self.runner.progress.connect(self.job.update)
        self.runner.report.connect(self._report)
        self.runner.device_error.connect(self._device_error)
        self.runner.succeeded.connect(self._done)
        self.runner.failed.connect(self._failed)
        self.runner.cancelled.connect(self._cancelled)
        self.runner.running_changed.connect(lambda running: self.run_button.setEnabled(not running))

    def _inputs_panel(self) -> QWidget:
        """The left side: artifacts, devices, measurement settings and the Profile button."""
        self.artifacts = QListWidget()
        add_files = QPushButton("Add files…")
        add_files.clicked.connect(self._add_files)
        add_build = QPushButton("Add build folder…")
        add_build.clicked.connect(self._add_build)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.artifacts.clear)
        artifact_buttons = QHBoxLayout()
        for button in (add_files, add_build, clear):
            artifact_buttons.addWidget(button)
        artifact_box = QGroupBox("Artifacts")
        artifact_layout = QVBoxLayout(artifact_box)
        artifact_layout.addWidget(self.artifacts)
        artifact_layout.addLayout(artifact_buttons)

        self.devices = QListWidget(maximumHeight=110)
        self.set_devices([DeviceChoice(device="local:cpu")])
        device_box = QGroupBox("Devices")
        QVBoxLayout(device_box).addWidget(self.devices)

        defaults = ProfileSettings()
        self.runs = QSpinBox(minimum=1, maximum=100_000, value=defaults.runs)
        self.min_seconds = QDoubleSpinBox(minimum=0, maximum=3600, value=defaults.min_seconds, suffix=" s")
        self.warmup = QSpinBox(minimum=0, maximum=10_000, value=defaults.warmup)
        self.op_runs = QSpinBox(minimum=0, maximum=10_000, value=defaults.op_profile_runs)
        self.threads = QSpinBox(minimum=1, maximum=256, value=defaults.threads)
        self.dataset = PathPicker("Labelled dataset", filter="NumPy archives (*.npz);;All files (*)",
                                  placeholder="optional: .npz (x/y) or class folders, for accuracy")
        settings_box = QGroupBox("Measurement")
        form = QFormLayout(settings_box)
        form.addRow("Minimum timed runs", self.runs)
        form.addRow("Minimum time", self.min_seconds)
        form.addRow("Warm-up runs", self.warmup)
        form.addRow("Per-op runs", self.op_runs)
        form.addRow("Threads", self.threads)
        form.addRow("Dataset", self.dataset)

        self.run_button = QPushButton("Profile")
        self.run_button.setMinimumHeight(34)
        self.run_button.setStyleSheet("QPushButton{font-weight:600}")
        self.run_button.clicked.connect(self.run)
        left = QWidget(minimumWidth=300, maximumWidth=480)
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(artifact_box, 2)
        left_layout.addWidget(device_box, 1)
        left_layout.addWidget(settings_box)
        left_layout.addWidget(self.run_button)
        return left

    def _results_panel(self) -> QWidget:
        """The right side: the job strip, errors, the results table, the plots and the export buttons."""
        self.error = ErrorPanel()
        self.job = JobStrip()
        self.job.cancel_requested.connect(self.cancel)
        self.results = table(["artifact", "device", "runs on", "median ms", "p90 / p99", "runs", "peak RSS", "size",
                              "accuracy", "status"], stretch=0)
        self.results.itemSelectionChanged.connect(self._selection_changed)
        self.latency_plot, self.ops_plot, self.comparison_plot = LatencyPlot(), OpsPlot(), ComparisonPlot()
        self.plots = QTabWidget()
        self.plots.addTab(self.latency_plot, "Latency")
        self.plots.addTab(self.ops_plot, "Per-op breakdown")
        self.plots.addTab(self.comparison_plot, "Accuracy · latency · size")
        self.log_scale = QCheckBox("Log-scale latency")
        self.log_scale.setToolTip("Latency axes on a log scale (for artifacts or devices orders of magnitude apart)")
        self.log_scale.toggled.connect(self._set_log_scale)
        self.save_plot = QPushButton("Save plot as PNG…")
        self.save_plot.clicked.connect(lambda: self.plots.currentWidget().save_dialog())
        ColumnPriorities(self.results, hide_first=(2, 5, 4, 6, 7, 1))
        self.export_json = QPushButton("Export JSON…", enabled=False)
        self.export_json.clicked.connect(lambda: self._export("json"))
        self.export_html = QPushButton("Export HTML…", enabled=False)
        self.export_html.clicked.connect(lambda: self._export("html"))
        export_row = QHBoxLayout()
        export_row.addWidget(self.log_scale)
        export_row.addWidget(self.save_plot)
        export_row.addStretch(1)
        export_row.addWidget(self.export_json)
        export_row.addWidget(self.export_html)
        results_split = QSplitter(Qt.Orientation.Vertical)
        results_split.addWidget(self.results)
        results_split.addWidget(self.plots)
        results_split.setSizes([220, 420])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(heading("Profile"))
        right_layout.addWidget(self.job)
        right_layout.addWidget(self.error)
        right_layout.addWidget(results_split, 1)
        right_layout.addLayout(export_row)
        return right

    # -- inputs ----------------------------------------------------------------------------------------

    def set_artifacts(self, paths: list[str]) -> None:
        """List ``paths`` (artifact files or build folders), all checked."""
        self.artifacts.clear()
        for path in paths:
            self._add_artifact(path)

    def _add_artifact(self, path: str) -> None:
        entry = QListWidgetItem(Path(path).name + ("/" if Path(path).is_dir() else ""))
        entry.setData(Qt.ItemDataRole.UserRole, path)
        entry.setToolTip(path)
        entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        entry.setCheckState(Qt.CheckState.Checked)
        self.artifacts.addItem(entry)

    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Artifacts", "", "Artifacts (*.tflite *.onnx *.xml);;All files (*)")
        for path in paths:
            self._add_artifact(path)

    def _add_build(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Build folder")
        if folder:
            self._add_artifact(folder)

    def set_devices(self, choices: list[DeviceChoice]) -> None:
        """The devices offered (from the Devices view); local:cpu is checked, what was checked stays checked."""
        checked = set(self.checked(self.devices)) or {"local:cpu"}
        self.tokens = {c.device: c.token for c in choices}
        self.devices.clear()
        for choice in choices:
            entry = QListWidgetItem(choice.device)
            entry.setData(Qt.ItemDataRole.UserRole, choice.device)
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Checked if choice.device in checked else Qt.CheckState.Unchecked)
            self.devices.addItem(entry)

    @staticmethod
    def checked(widget: QListWidget) -> list[str]:
        return [widget.item(i).data(Qt.ItemDataRole.UserRole) for i in range(widget.count())
                if widget.item(i).checkState() == Qt.CheckState.Checked]

    def settings(self) -> ProfileSettings:
        return ProfileSettings(runs=self.runs.value(), min_seconds=self.min_seconds.value(), warmup=self.warmup.value(),
                               op_profile_runs=self.op_runs.value(), threads=self.threads.value(), dataset=self.dataset.path())

    def set_settings(self, settings: ProfileSettings) -> None:
        self.runs.setValue(settings.runs)
        self.min_seconds.setValue(settings.min_seconds)
        self.warmup.setValue(settings.warmup)
        self.op_runs.setValue(settings.op_profile_runs)
        self.threads.setValue(settings.threads)
        self.dataset.edit.setText(settings.dataset)

    # -- running ---------------------------------------------------------------------------------------

    def run(self) -> bool:
        artifacts, devices = self.checked(self.artifacts), self.checked(self.devices)
        self.error.clear()
        if not artifacts or not devices:
            self.error.show_error("nothing to profile" if not artifacts else "no device chosen",
                                  "check at least one artifact and one device" if artifacts else "check a device in the list")
            return False
        request = ProfileRequest(artifacts=artifacts, devices=[DeviceChoice(device=d, token=self.tokens.get(d)) for d in devices],
                                 settings=self.settings())
        if not self.runner.start(request):
            return False
        self.reports = []
        self.results.setRowCount(0)
        for plot in (self.latency_plot, self.ops_plot, self.comparison_plot):
            plot.show_empty("Measuring …")
        self.job.started(f"Profiling {len(artifacts)} artifact source(s) on {', '.join(devices)} …")
        self.status_message.emit("profiling running")
        return True

    def cancel(self) -> None:
        self.job.stage.setText("Cancelling …")
        self.runner.cancel()

    def _report(self, device: str, data: dict[str, Any]) -> None:
        from edgekit import ProfileReport

        self.reports.append(ProfileReport.model_validate(data))
        self._show()

    def _device_error(self, device: str, message: str, hint: str) -> None:
        self.error.show_error(f"{device}: {message}", hint)

    def _done(self, data: Any) -> None:
        count = sum(len(r.results) for r in self.reports)
        self.job.finished(f"Done: {count} measurement(s) on {len(self.reports)} device(s)")
        self.status_message.emit("profiling finished")

    def _failed(self, message: str, hint: str) -> None:
        self.job.finished("Failed")
        self.error.show_error(message, hint)

    def _cancelled(self, message: str) -> None:
        self.job.finished("Cancelled")
        self.status_message.emit("profiling cancelled")

    # -- results ---------------------------------------------------------------------------------------

    def show_reports(self, reports: list[Any]) -> None:
        """Show earlier ``ProfileReport``s (a run reopened from the history)."""
        self.reports = list(reports)
        self.error.clear()
        self._show()
        self.job.finished(f"Reopened: {sum(len(r.results) for r in self.reports)} measurement(s)")

    def _set_log_scale(self, on: bool) -> None:
        self.latency_plot.log_scale = self.comparison_plot.log_scale = on
        results = self.results_list()
        if results:
            self.latency_plot.plot(results)
            self.comparison_plot.plot(results)

    def results_list(self) -> list[Any]:
        return [r for report in self.reports for r in report.results]

    def _show(self) -> None:
        results = self.results_list()
        self.results.setRowCount(0)
        for r in results:
            accuracy = "-" if r.accuracy is None else f"{r.accuracy.accuracy:.2%}" + (
                f" (cos {r.accuracy.parity.cosine:.4f})" if r.accuracy.parity else "")
            cells = (item(f"{r.format} {r.precision or ''} · {Path(r.artifact).name}", tooltip=r.artifact), item(r.device),
                     item(r.accelerator or "-"), item(_ms(r.median_ms), align_right=True),
                     item(f"{_ms(r.p90_ms)} / {_ms(r.p99_ms)}", align_right=True), item(str(r.runs), align_right=True),
                     item(human_size(r.peak_rss_bytes), align_right=True), item(human_size(r.size_bytes), align_right=True),
                     item(accuracy, align_right=True),
                     item(r.status, r.status, tooltip=(r.error or "") + (f"\nhint: {r.hint}" if r.hint else "")))
            row = self.results.rowCount()
            self.results.insertRow(row)
            for column, cell in enumerate(cells):
                self.results.setItem(row, column, cell)
        errors = [r for r in results if r.error]
        if errors:
            self.error.show_error(f"{label(errors[0])}: {errors[0].error}", errors[0].hint or "")
        self.latency_plot.plot(results)
        self.comparison_plot.plot(results)
        if results:
            self.results.selectRow(0)
        self._selection_changed()
        self.export_json.setEnabled(bool(self.reports))
        self.export_html.setEnabled(bool(self.reports))

    def _selection_changed(self) -> None:
        results = self.results_list()
        rows = self.results.selectionModel().selectedRows()
        chosen = results[rows[0].row()] if rows and rows[0].row() < len(results) else (results[0] if results else None)
        self.ops_plot.plot(chosen)

    def _export(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind.upper()} report", f"profile.{kind}",
                                              f"{kind.upper()} (*.{kind})")
        if path:
            self.export(path, kind)

    def export(self, path: str, kind: str) -> list[Path]:
        """Write each device's report as the CLI does (``--json`` / ``--html``); several devices get one JSON file
        each and one HTML report with every device."""
        import edgekit

        target = Path(path)
        written = []
        if kind == "html" and len(self.reports) > 1:
            written.append(edgekit.save_combined_html(self.reports, target))
            self.status_message.emit(f"exported {target.name} ({len(self.reports)} devices)")
            return written
        for report in self.reports:
            out = target if len(self.reports) == 1 else target.with_name(
                f"{target.stem}-{report.device.replace('://', '-').replace(':', '-')}{target.suffix}")
            written.append(report.save_json(out) if kind == "json" else report.save_html(out))
        self.status_message.emit("exported " + ", ".join(p.name for p in written))
        return written
