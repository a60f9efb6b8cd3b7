"""The calibration-data report (``edgekit.data_report``) as a panel of the Convert view."""
from __future__ import annotations

from typing import Any

from edgekit.gui.widgets import item, table
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class DataReportPanel(QWidget):
    """Inputs, the reference model's classes, the worst-covered layers and every finding with its hint."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("No data report yet: choose calibration data and press “Check data”", wordWrap=True,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.inputs = table(["input", "shape", "dtype", "min", "max", "NaN/Inf", "expected"], stretch=6)
        self.findings = table(["level", "finding", "hint"], stretch=2)
        self.findings.setWordWrap(True)
        self.coverage = table(["layer", "calibration range", "validation range", "covered", "clipped"], stretch=0)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.inputs, 1)
        layout.addWidget(QLabel("<b>Findings</b>"))
        layout.addWidget(self.findings, 2)
        layout.addWidget(QLabel("<b>Activation-range coverage</b> — worst layers first"))
        layout.addWidget(self.coverage, 2)

    def show_report(self, report: Any) -> None:
        """Fill the panel from an ``edgekit.data_checks.DataReport``."""
        classes = ""
        if report.class_histogram:
            total = sum(report.class_histogram.values())
            top, count = max(report.class_histogram.items(), key=lambda kv: kv[1])
            classes = f" · {len(report.class_histogram)} predicted classes (largest: {top}, {count / total:.0%})"
        self.summary.setText(f"{report.samples} calibration samples · {report.exact_duplicates} exact and "
                             f"{report.near_duplicates} near duplicates{classes} · {len(report.warnings)} warning(s)")
        _fill(self.inputs, [(item(s.name), item(str(s.shape)), item(s.dtype), item(f"{s.minimum:.4g}", align_right=True),
                             item(f"{s.maximum:.4g}", align_right=True), item(str(s.non_finite_samples), align_right=True),
                             item(f"[{s.expected_range[0]:.3g}, {s.expected_range[1]:.3g}] ({s.expected_from})"
                                  if s.expected_range else "-")) for s in report.inputs])
        _fill(self.findings, [(item(f.level, "partial" if f.level == "warning" else None), item(f.message, tooltip=f.message),
                               item(f.hint, tooltip=f.hint)) for f in report.findings]
              or [(item("ok", "passed"), item("no problem found"), item(""))])
        self.findings.resizeRowsToContents()
        _fill(self.coverage, [(item(r.layer), item(f"[{r.calibration_range[0]:.3g}, {r.calibration_range[1]:.3g}]"),
                               item(f"[{r.validation_range[0]:.3g}, {r.validation_range[1]:.3g}]"),
                               item(f"{r.coverage:.0%}", "failed" if r.coverage < 0.9 else "passed", align_right=True),
                               item(f"{r.clipped:.2%}", align_right=True)) for r in report.coverage[:20]])


def _fill(widget: Any, rows: list[tuple]) -> None:
    widget.setRowCount(0)
    for cells in rows:
        row = widget.rowCount()
        widget.insertRow(row)
        for column, cell in enumerate(cells):
            widget.setItem(row, column, cell)
