"""The Convert view's lower tabs: findings, the Check step, the calibration-data report, the artifact detail,
the deployment contract and the data preview."""

from __future__ import annotations

from typing import Any

from edgekit.gui.artifact_detail import ArtifactDetail
from edgekit.gui.check_panel import CheckPanel
from edgekit.gui.contract_panel import ContractPanel
from edgekit.gui.data_panel import DataReportPanel
from edgekit.gui.data_preview import DataPreviewPanel
from PySide6.QtWidgets import QTabWidget


def add_tabs(view: Any) -> QTabWidget:
    """Make the tabs and their panels as attributes of ``view`` (a ConvertView) and wire them to it."""
    view.data_panel = DataReportPanel()
    view.tabs = tabs = QTabWidget()
    tabs.setMinimumHeight(170)  # set, so layouts use it and not the pages' hints: the results table keeps its rows
    view.tabs.addTab(view.findings, "Findings")
    view.tabs.addTab(view.data_panel, "Calibration data")
    view.check_panel = CheckPanel(view.profiles, view.options)
    view.tabs.insertTab(0, view.check_panel, "Check (before converting)")
    view.tabs.setCurrentWidget(view.check_panel)
    view.detail = ArtifactDetail()
    view.tabs.addTab(view.detail, "Artifact detail")
    view.results.cellClicked.connect(view._artifact_clicked)
    view.contract_panel = ContractPanel()
    view.tabs.addTab(view.contract_panel, "Contract")
    view.preview_panel = DataPreviewPanel()
    view.previewer = view.preview_panel.runner
    view.calibration.changed.connect(lambda path: view.preview_panel.preview("Calibration", path))
    view.validation.changed.connect(lambda path: view.preview_panel.preview("Validation", path))
    view.tabs.addTab(view.preview_panel, "Data preview")
    view.preview_panel.shown.connect(lambda: view.tabs.setCurrentWidget(view.preview_panel))
    view.previewer.failed.connect(view.error.show_error)
    return tabs
