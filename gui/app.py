"""Start the desktop app: ``edgekit gui [PATHS]`` and the ``edgekit-gui`` entry point."""
from __future__ import annotations

import sys


def run(paths: list[str] | None = None) -> int:
    """Open the main window with ``paths`` (default: the command line's arguments) and run until it closes."""
    from edgekit.gui.main_window import APPLICATION, ORGANIZATION, MainWindow
    from PySide6.QtWidgets import QApplication

    if paths is None:
        paths = sys.argv[1:]
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "edgekit-gui"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow()
    window.open_paths(list(paths))
    window.show()
    code = app.exec()
    window.deleteLater()
    return code
