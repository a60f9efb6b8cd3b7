"""The PySide6 desktop application (see the GUI issue); it uses only the public edgekit API."""
