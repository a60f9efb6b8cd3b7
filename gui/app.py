"""Start the desktop app: ``edgekit gui [PATHS]`` and the ``edgekit-gui`` entry point."""
from __future__ import annotations

import sys


def check_platform() -> None:
    """Raise ``MissingDependencyError`` with the ``apt-get install`` line when Qt's X11 plugin lacks system libraries."""
    from edgekit.gui.system_libs import check_qt_platform

    check_qt_platform()


def run(paths: list[str] | None = None) -> int:
    """Open the main window with ``paths`` (default: the command line's arguments) and run until it closes;
    exit code 2 with the missing system libraries named (and how to install them) when Qt could not start."""
    from edgekit.errors import EdgekitError

    try:
        check_platform()
    except EdgekitError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
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
