"""`edgekit gui` names the system libraries Qt's X11 plugin lacks with the apt-get line that installs them."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.errors import MissingDependencyError

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("ldd") is None, reason="needs gcc and ldd")


def _plugin_needing(folder: Path, sonames: list[str]) -> Path:
    """A real shared library linked against ``sonames``, whose files are then removed (as on a fresh system)."""
    source = folder / "empty.c"
    source.write_text("int edgekit_plugin_stub(void) { return 0; }\n")
    stubs = folder / "stubs"
    stubs.mkdir()
    for soname in sonames:
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(stubs / soname), f"-Wl,-soname,{soname}", str(source)], check=True)
    plugin = folder / "libqxcb.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(plugin), str(source), "-Wl,--no-as-needed", f"-L{stubs}",
                    *(f"-l:{s}" for s in sonames)], check=True)
    shutil.rmtree(stubs)
    return plugin


def test_debian_package_names_of_the_libraries_qt_needs():
    from edgekit.gui.system_libs import apt_line, package_of

    names = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0", "libxcb-render-util.so.0",
             "libdbus-1.so.3", "libX11-xcb.so.1", "libEGL.so.1", "libglib-2.0.so.0", "libxcb-xkb.so.1"]
    assert [package_of(n) for n in names] == ["libxcb-cursor0", "libxcb-icccm4", "libxkbcommon-x11-0", "libxcb-render-util0",
                                             "libdbus-1-3", "libx11-xcb1", "libegl1", "libglib2.0-0", "libxcb-xkb1"]
    assert apt_line(["libxcb-cursor.so.0", "libxcb-cursor.so.0"]) == "sudo apt-get install libxcb-cursor0"


def test_missing_xcb_libraries_are_named_with_the_apt_line(tmp_path):
    from edgekit.gui.system_libs import check_qt_platform

    # versions no system has, so that they are missing here too (the names are Qt's, the rule is Debian's)
    plugin = _plugin_needing(tmp_path, ["libxcb-cursor.so.90", "libxkbcommon-x11.so.90", "libxcb-icccm.so.94"])
    with pytest.raises(MissingDependencyError) as missing:
        check_qt_platform({"DISPLAY": ":0"}, plugin=plugin)
    assert missing.value.message == ("the desktop app needs system libraries that are not installed: "
                                     "libxcb-cursor.so.90, libxkbcommon-x11.so.90, libxcb-icccm.so.94")
    assert missing.value.hint.startswith("install them with: sudo apt-get install libxcb-cursor90 libxkbcommon-x11-90 "
                                         "libxcb-icccm94 ")
    check_qt_platform({"QT_QPA_PLATFORM": "offscreen"}, plugin=plugin)  # offscreen needs none of them
    check_qt_platform({"WAYLAND_DISPLAY": "wayland-0"}, plugin=plugin)  # nor a Wayland session


def test_a_damaged_pyside6_is_not_an_apt_problem(tmp_path):
    from edgekit.gui.system_libs import check_qt_platform

    plugin = _plugin_needing(tmp_path, ["libQt6XcbQpa.so.96"])
    with pytest.raises(MissingDependencyError, match="PySide6 installation is incomplete") as missing:
        check_qt_platform({"QT_QPA_PLATFORM": "xcb"}, plugin=plugin)
    assert "force-reinstall" in missing.value.hint


def test_edgekit_gui_exits_2_with_the_install_line(tmp_path, monkeypatch):
    from edgekit.gui import system_libs

    from edgekit.cli import main

    plugin = _plugin_needing(tmp_path, ["libxcb-keysyms.so.91"])
    monkeypatch.setattr(system_libs, "xcb_plugin", lambda: plugin)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    done = CliRunner().invoke(main, ["gui"])
    assert done.exit_code == 2
    assert "error: the desktop app needs system libraries that are not installed: libxcb-keysyms.so.91" in done.output
    assert "hint: install them with: sudo apt-get install libxcb-keysyms91" in done.output
    assert "Traceback" not in done.output
