"""The main window: navigation between the Convert, Devices and Profile views, menus, status bar, settings."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.gui.convert_view import ConvertView
from edgekit.gui.devices_view import DevicesView
from edgekit.gui.graph_view import GraphView
from edgekit.gui.history import History, history_folder
from edgekit.gui.history_view import HistoryView
from edgekit.gui.jobs import ConvertOptions, ProfileSettings, TuneSettings
from edgekit.gui.profile_view import ProfileView
from edgekit.gui.project import MANIFEST, PROJECT_SUFFIX, Project, kind_of_path, read_build
from edgekit.gui.tune_view import TuneView
from PySide6.QtCore import QByteArray, QSettings, QSize
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QStyle,
    QWidget,
)

ORGANIZATION, APPLICATION = "edgekit", "edgekit-gui"
VIEWS = ("Convert", "Devices", "Profile", "Graph", "Tune", "History")
STYLE = """
QListWidget#nav{background:#23272e;color:#d7dae0;border:none;font-size:11pt;padding-top:8px}
QListWidget#nav::item{padding:10px 14px;border-left:3px solid transparent}
QListWidget#nav::item:selected{background:#2f3540;color:white;border-left:3px solid #4c8bf5}
QGroupBox{font-weight:600;border:1px solid #d9dce1;border-radius:6px;margin-top:10px;padding:8px 6px 6px 6px}
QGroupBox::title{subcontrol-origin:margin;left:10px;padding:0 4px}
QTableWidget{gridline-color:#e3e5e8}
"""


class MainWindow(QMainWindow):
    """The edgekit desktop app. ``settings`` defaults to QSettings("edgekit", "edgekit-gui")."""

    def __init__(self, settings: QSettings | None = None, refresh_devices: bool = True) -> None:
        super().__init__()
        import edgekit

        self.settings = settings or QSettings(ORGANIZATION, APPLICATION)
        self.build_dir: str | None = None
        self.project_path: str | None = None
        self.setWindowTitle("edgekit")
        self.setStyleSheet(STYLE)
        self.resize(1320, 860)

        self.convert_view = ConvertView(edgekit.list_profiles())
        self.devices_view = DevicesView()
        self.profile_view = ProfileView()
        self.graph_view = GraphView()
        self.history_view = HistoryView(History(Path(self.settings.fileName()).parent / "edgekit-gui-history"))
        self.tune_view = TuneView(edgekit.list_profiles())
        self.stack = QStackedWidget()
        for view in (self.convert_view, self.devices_view, self.profile_view, self.graph_view, self.tune_view,
                     self.history_view):
            self.stack.addWidget(view)
            view.status_message.connect(self.show_status)

        self.nav = QListWidget(objectName="nav", fixedWidth=136)
        self.nav.setIconSize(QSize(20, 20))
        icons = (QStyle.StandardPixmap.SP_FileDialogDetailedView, QStyle.StandardPixmap.SP_ComputerIcon,
                 QStyle.StandardPixmap.SP_MediaPlay, QStyle.StandardPixmap.SP_FileDialogListView,
                 QStyle.StandardPixmap.SP_BrowserReload, QStyle.StandardPixmap.SP_FileDialogContentsView)
        for name, icon in zip(VIEWS, icons):
            self.nav.addItem(QListWidgetItem(self.style().standardIcon(icon), name))
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.nav)
        content = QWidget()
        content_layout = QHBoxLayout(content)
        content_layout.setContentsMargins(14, 10, 14, 6)
        content_layout.addWidget(self.stack)
        layout.addWidget(content, 1)
        self.setCentralWidget(central)
        self.version_label = QLabel(f"edgekit {edgekit.__version__}")
        self.statusBar().addPermanentWidget(self.version_label)
        self._menus()

        self.convert_view.build_ready.connect(self._build_ready)
        self.convert_view.profile_requested.connect(self._profile_artifacts)
        self.convert_view.paths_dropped.connect(self.open_paths)
        self.convert_view.build_ready.connect(self._record_build)
        self.profile_view.runner.succeeded.connect(self._record_profile)
        self.history_view.open_build.connect(self._reopen_build)
        self.history_view.open_reports.connect(self._reopen_reports)
        self.devices_view.devices_changed.connect(self.profile_view.set_devices)
        self.convert_view.converter.running_changed.connect(lambda running: running and self.save_settings())
        self.tune_view.runner.running_changed.connect(lambda running: running and self.save_settings())
        self.nav.setCurrentRow(0)
        self._restore()
        if refresh_devices:
            self.devices_view.refresh()
        self.show_status("Ready")

    def show_view(self, name: str) -> None:
        self.nav.setCurrentRow(VIEWS.index(name))

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    # -- menus -----------------------------------------------------------------------------------------

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("Open &model…", QKeySequence.StandardKey.Open, self._open_model_dialog),
            ("Open &build folder…", None, self._open_build_dialog),
            ("Open &project…", None, self._open_project_dialog),
            ("&Save project…", QKeySequence.StandardKey.Save, self._save_project_dialog),
            (None, None, None),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            if text is None:
                file_menu.addSeparator()
                continue
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        view_menu = self.menuBar().addMenu("&View")
        for index, name in enumerate(VIEWS):
            action = QAction(name, self, shortcut=QKeySequence(f"Ctrl+{index + 1}"))
            action.triggered.connect(lambda _=False, n=name: self.show_view(n))
            view_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About edgekit", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, "edgekit", f"{self.version_label.text()}\nConvert, validate and profile models for edge devices."))
        help_menu.addAction(about)

    def _open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "", "Models (*.keras *.h5 *.onnx *.pt *.pt2);;All files (*)")
        if path:
            self.open_paths([path])

    def _open_build_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a build folder")
        if folder:
            self.open_paths([folder])

    def _open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", "", f"edgekit projects (*{PROJECT_SUFFIX} *.json)")
        if path:
            self.open_paths([path])

    def _save_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save project", self.project_path or f"project{PROJECT_SUFFIX}",
                                              f"edgekit projects (*{PROJECT_SUFFIX})")
        if path:
            self.save_project(path)

    # -- opening and saving ----------------------------------------------------------------------------

    def open_paths(self, paths: list[str]) -> None:
        """Open what each path names: a model (inspected), a build folder (its results) or a project file."""
        from edgekit.errors import EdgekitError

        for path in paths:
            try:
                kind = kind_of_path(path)
                if kind == "build":
                    self.open_build(path)
                elif kind == "project":
                    self.open_project(path)
                else:
                    self.show_view("Convert")
                    self.convert_view.open_model(str(Path(path).resolve()) if Path(path).exists() else path)
            except EdgekitError as exc:
                self.show_view("Convert")
                self.convert_view.error.show_error(exc.message, exc.hint)

    def open_build(self, folder: str) -> None:
        build = read_build(folder)
        self.convert_view.show_build(build)
        self._build_ready(build)
        self.show_view("Convert")

    def open_project(self, path: str) -> None:
        project = Project.load(path)
        self.project_path = path
        self.history_view.set_history(History(history_folder(path)))
        self.convert_view.set_options(project.options)
        if project.build_dir and Path(project.build_dir, MANIFEST).is_file():
            self.open_build(project.build_dir)
        self.setWindowTitle(f"edgekit — {Path(path).name}")
        self.show_status(f"opened project {Path(path).name}")

    def save_project(self, path: str) -> Path:
        written = Project(options=self.convert_view.options(), build_dir=self.build_dir).save(path)
        self.project_path = str(written)
        self.history_view.set_history(self.history_view.history.copy_to(history_folder(written)))
        self.setWindowTitle(f"edgekit — {written.name}")
        self.show_status(f"saved project {written.name}")
        return written

    def _build_ready(self, build: Any) -> None:
        self.build_dir = build.output_dir
        self.profile_view.set_artifacts([a.path for a in build.artifacts])
        self.graph_view.set_files([self.convert_view.options().model, *(a.path for a in build.artifacts)], build.target)

    def _record_build(self, build: Any) -> None:
        self.history_view.history.record_build(build)
        self.history_view.refresh()

    def _record_profile(self, data: Any) -> None:
        if self.profile_view.reports:
            self.history_view.history.record_profile(self.profile_view.reports)
            self.history_view.refresh()

    def _reopen_build(self, build: Any) -> None:
        self.convert_view.show_build(build)
        self._build_ready(build)
        self.show_view("Convert")

    def _reopen_reports(self, reports: list[Any]) -> None:
        self.profile_view.show_reports(reports)
        self.show_view("Profile")

    def _profile_artifacts(self, paths: list[str]) -> None:
        self.profile_view.set_artifacts(paths)
        self.show_view("Profile")

    # -- settings --------------------------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        for key, load in (
            ("convert/options", lambda text: self.convert_view.set_options(ConvertOptions.model_validate_json(text))),
            ("profile/settings", lambda text: self.profile_view.set_settings(ProfileSettings.model_validate_json(text))),
            ("tune/settings", lambda text: self.tune_view.set_settings(TuneSettings.model_validate_json(text))),
        ):
            text = self.settings.value(key)
            if isinstance(text, str) and text:
                try:
                    load(text)
                except ValueError:
                    self.settings.remove(key)  # written by another version: start from the defaults

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("convert/options", self.convert_view.options().model_dump_json())
        self.settings.setValue("profile/settings", self.profile_view.settings().model_dump_json())
        self.settings.setValue("tune/settings", self.tune_view.form.settings(strict=False).model_dump_json())
        self.settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.save_settings()
        for runner in (self.convert_view.converter, self.convert_view.inspector, self.profile_view.runner,
                       self.devices_view.prober, self.devices_view.agent_checker, self.graph_view.runner,
                       self.convert_view.check_panel.runner, self.convert_view.previewer):
            runner.shutdown()
        self.tune_view.runner.shutdown()
        super().closeEvent(event)

