"""GUI tests run offscreen, with QSettings pointed at a temporary folder (never the user's settings)."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory: pytest.TempPathFactory):
    """Every QSettings (also the app's default one) lives in a fresh folder for the test."""
    folder = str(tmp_path_factory.mktemp("qsettings"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    return folder


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "edgekit-gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    """The real main window (without the device probe at start, which tests that need it ask for)."""
    from edgekit.gui.main_window import MainWindow

    win = MainWindow(settings=settings, refresh_devices=False)
    qtbot.addWidget(win)
    win.show()
    return win
