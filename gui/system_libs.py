"""The system libraries Qt's X11 platform plugin needs, checked before the window opens (no Qt imported here).

PySide6 wheels bring Qt itself but not the X11/xcb libraries its ``xcb`` platform plugin links against; a fresh
Debian or Ubuntu desktop lacks several (``libxcb-cursor0``, ``libxcb-icccm4``, ...) and Qt then aborts with a
message about "could not load the Qt platform plugin". ``ldd`` on the plugin names what is missing, and each
library maps to the Debian/Ubuntu package that ships it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from edgekit.errors import MissingDependencyError

#: sonames whose Debian package name does not follow the ``lib<name><version>`` rule
PACKAGES = {"libglib-2.0.so.0": "libglib2.0-0", "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1",
            "libOpenGL.so.0": "libopengl0", "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6"}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, or None where PySide6 is not installed."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations)), "Qt", "plugins", "platforms", "libqxcb.so")
    return plugin if plugin.is_file() else None


def uses_xcb(environ: Mapping[str, str]) -> bool:
    """Whether Qt will open its window through X11 (xcb): Linux, not offscreen, not a Wayland session."""
    if not sys.platform.startswith("linux"):
        return False
    platform = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0]
    if platform:
        return platform == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as not found, each once, in order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def package_of(soname: str) -> str:
    """The Debian/Ubuntu package of a library: ``libxcb-cursor.so.0`` -> ``libxcb-cursor0``,
    ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``."""
    if soname in PACKAGES:
        return PACKAGES[soname]
    name, _, version = soname.partition(".so.")
    name = name.lower()
    version = version.split(".")[0]
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def apt_line(sonames: list[str]) -> str:
    """The command that installs the packages of ``sonames``."""
    return "sudo apt-get install " + " ".join(dict.fromkeys(package_of(s) for s in sonames))


def check_qt_platform(environ: Mapping[str, str] | None = None, plugin: Path | None = None) -> None:
    """Raise :class:`MissingDependencyError` with the ``apt-get install`` line when the xcb plugin cannot load."""
    environ = os.environ if environ is None else environ
    if not uses_xcb(environ):
        return
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return  # no PySide6 (the caller names the extra) or no ldd to ask: Qt will say what it lacks
    try:
        done = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return
    absent = missing_libraries(done.stdout)
    own = [name for name in absent if name.startswith(("libQt6", "libpyside6", "libshiboken6"))]
    if own:  # the wheel itself is damaged, no system package helps
        raise MissingDependencyError(f"the PySide6 installation is incomplete: {', '.join(own)} not found",
                                     "reinstall it: pip install --force-reinstall PySide6-Essentials")
    if absent:
        raise MissingDependencyError(
            f"the desktop app needs system libraries that are not installed: {', '.join(absent)}",
            f"install them with: {apt_line(absent)}  (Debian/Ubuntu; other systems: the packages providing them)",
        )
