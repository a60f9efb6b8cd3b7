"""Declared packages checked before any work: a missing one is named with the line that installs it."""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable

from edgekit.errors import MissingDependencyError

CONVERT = "pip install 'edgekit[convert]'"
GUI = "pip install 'edgekit[gui]'"
AGENT = "pip install 'edgekit[agent]'"


def install_line(extra: str) -> str:
    """The pip line that installs edgekit's ``extra``."""
    return f"pip install 'edgekit[{extra}]'"


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (its parent packages are imported)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or was blocked (sys.modules[name] = None)
        return False


def missing(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that are not installed, in order."""
    return [module for module in modules if not is_installed(module)]


def require(modules: Iterable[str], install: str, needed_for: str) -> None:
    """Raise :class:`MissingDependencyError` naming the first missing module of ``modules`` and ``install``."""
    absent = missing(modules)
    if absent:
        names = ", ".join(f"'{name}'" for name in absent)
        raise MissingDependencyError(f"{needed_for} needs the Python module {names}, which is not installed", install)
