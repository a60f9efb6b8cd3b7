"""The Check step of the Convert view: ``edgekit check`` of the model for the chosen target before converting —
the ops and compute that leave the accelerator, what the build will change, what cannot be checked here."""
from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from edgekit.gui.jobs import CheckRequest, ConvertOptions
from edgekit.gui.runner import JobRunner
from edgekit.gui.target_facts import not_checked, planned_changes
from edgekit.gui.widgets import ErrorPanel, item, table
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

SEVERITY_STATES = {"error": "error", "fallback": "partial", "change": "found"}


class CheckPanel(QWidget):
    """``options()`` gives the Convert view's current options; **Check against the target** runs the check."""

    def __init__(self, profiles: dict[str, Any], options: Callable[[], ConvertOptions], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profiles, self.options = profiles, options
        self.report: Any = None
        self.runner = JobRunner(self)
        self.button = QPushButton("Check against the target")
        self.button.setToolTip("edgekit check: what the target cannot run, runs on its CPU, or needs changed")
        self.button.clicked.connect(self.run)
        self.state = QLabel("Not checked yet: pick a model and a target, then press Check", wordWrap=True)
        self.error = ErrorPanel()
        self.summary = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.findings = table(["severity", "format", "where", "finding", "hint"], stretch=3)
        self.findings.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.state, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(self.summary)
        layout.addWidget(self.findings, 1)
        self.runner.progress.connect(lambda stage, fraction, message: self.state.setText(message or stage))
        self.runner.succeeded.connect(self._checked)
        self.runner.failed.connect(self._failed)
        self.runner.running_changed.connect(lambda running: self.button.setEnabled(not running))

    def run(self) -> bool:
        """Start ``edgekit.check`` for the current model, target, formats and precision."""
        options = self.options()
        if not options.model:
            self.error.show_error("no model to check", "pick a model file or drop one on the window")
            return False
        self.error.clear()
        precision = options.precisions[0] if len(options.precisions) == 1 else None
        self._asked = options
        started = self.runner.start(CheckRequest(model=options.model, target=options.target, formats=options.formats,
                                                 precision=precision, allow_unsafe=options.allow_unsafe))
        if started:
            self.state.setText(f"Checking against {options.target} …")
        return started

    def _failed(self, message: str, hint: str) -> None:
        self.state.setText("The check failed")
        self.error.show_error(message, hint)

    def _checked(self, data: dict[str, Any]) -> None:
        from edgekit import CompatibilityReport

        self.show_report(CompatibilityReport.model_validate(data))

    def show_report(self, report: Any) -> None:
        """Fill the panel from an ``edgekit.check`` CompatibilityReport."""
        self.report = report
        profile = self.profiles[report.target]
        verdict = "breaks a hard limit of the target" if not report.ok else "no blocking finding"
        self.state.setText(f"Checked against {report.target} at {report.precision}: {verdict}")
        lines = [format_line(fmt, stats, profile) for fmt, stats in report.stats.items()]
        changes = planned_changes(profile, report.precision, report)
        unchecked = not_checked(profile, report)
        parts = ["<b>Ops</b><br>" + "<br>".join(lines)]
        if changes:
            parts.append("<b>What the build will change</b><br>" + "<br>".join(f"• {escape(c, quote=False)}" for c in changes))
        if unchecked:
            parts.append("<b>Not checked</b><br>" + "<br>".join(f"• {escape(c, quote=False)}" for c in unchecked))
        self.summary.setText("<br>".join(parts))
        self.findings.setRowCount(0)
        for f in report.findings:
            row = self.findings.rowCount()
            self.findings.insertRow(row)
            cells = (item(f.severity, SEVERITY_STATES.get(f.severity)), item(f.format or "-"),
                     item(" / ".join(x for x in (f.layer, f.op) if x) or f.kind), item(f.message, tooltip=f.message),
                     item(f.hint, tooltip=f.hint))
            for column, cell in enumerate(cells):
                self.findings.setItem(row, column, cell)
        self.findings.resizeRowsToContents()


def format_line(fmt: str, stats: Any, profile: Any) -> str:
    """'tflite: 217 of 258 ops (83% of the compute) leave the accelerator', or why it is not known."""
    if not stats.opset_known:
        if profile.device_class == "cpu":
            return f"{fmt}: {stats.ops_total} ops, all on the target CPU"
        return f"{fmt}: {stats.ops_total} ops — <b>not checked</b>: {profile.name} states no op set"
    where = "run on the CPU" if profile.cpu_fallback else "cannot run (no CPU fallback)"
    if not stats.ops_fallback:
        return f"{fmt}: all {stats.ops_total} ops on the accelerator"
    return (f"{fmt}: <b>{stats.ops_fallback} of {stats.ops_total} ops</b> ({stats.fallback_fraction:.0%} of the estimated "
            f"compute) leave the accelerator and {where}")
