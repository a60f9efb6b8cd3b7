"""A missing package is named with the line that installs it, before any work, without a traceback.

Each case runs the real CLI in a fresh interpreter where an import hook makes the named modules
unimportable, as on a machine where they were never installed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BLOCKED_RUN = """
import importlib.abc, sys
BLOCKED = {blocked!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
from edgekit.cli import main
sys.argv = ["edgekit", *{argv!r}]
main()
"""


def _cli_without(blocked: tuple[str, ...], *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    code = BLOCKED_RUN.format(blocked=blocked, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    from formats.models import onnx_model

    return onnx_model(tmp_path_factory.mktemp("missing") / "model.onnx")


def test_convert_without_onnx_names_the_package_and_the_extra(onnx_file, tmp_path):
    out = tmp_path / "out"
    done = _cli_without(("onnx",), "convert", str(onnx_file), "--format", "onnx", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert "error: converting onnx to onnx needs the Python module 'onnx', which is not installed" in done.stderr
    assert "hint: pip install 'edgekit[convert]'" in done.stderr
    assert "Traceback" not in done.stderr and "worker log" not in done.stderr
    assert not out.exists()  # refused before any work


def test_convert_lists_every_missing_module_of_the_route(onnx_file, tmp_path):
    done = _cli_without(("onnx", "openvino"), "convert", str(onnx_file), "--format", "openvino", "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "needs the Python module 'onnx', 'openvino', which is not installed" in done.stderr


def test_gui_without_pyside6_names_the_gui_extra():
    done = _cli_without(("PySide6",), "gui")
    assert done.returncode == 2, done.stderr
    assert "the desktop app (edgekit gui) needs the Python module 'PySide6'" in done.stderr
    assert "hint: pip install 'edgekit[gui]'" in done.stderr and "Traceback" not in done.stderr


def test_profile_without_onnxruntime_names_the_agent_extra(onnx_file):
    done = _cli_without(("onnxruntime",), "profile", str(onnx_file), "--runs", "1", "--min-time", "0")
    assert "running onnx artifacts with onnxruntime needs the Python module 'onnxruntime'" in done.stdout + done.stderr
    assert "pip install 'edgekit[agent]'" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_devices_without_any_runtime_lists_every_runtime_as_missing_with_its_install_line():
    done = _cli_without(("ai_edge_litert", "tflite_runtime", "onnxruntime", "openvino", "executorch"), "devices", "--scan", "0", "--json")
    assert done.returncode == 0, done.stderr
    import json

    entries = json.loads(done.stdout)["devices"]
    runtimes = {(e["format"], e["runtime"]): e for e in entries if e["kind"] == "runtime"}
    assert set(runtimes) == {("tflite", "litert"), ("tflite", "tflite-runtime"), ("onnx", "onnxruntime"),
                             ("onnx", "openvino"), ("openvino", "openvino"), ("executorch", "executorch")}
    assert all(e["state"] == "missing" for e in entries)
    assert runtimes[("onnx", "onnxruntime")]["install"] == "pip install 'edgekit[agent]'"
    assert runtimes[("tflite", "tflite-runtime")]["install"] == "pip install tflite-runtime"
    accelerators = [e for e in entries if e["kind"] == "accelerator"]
    assert runtimes[("executorch", "executorch")]["install"] == "pip install 'edgekit[executorch]'"
    assert len(accelerators) == 6 + 1 + 8 + 3 + 3 + 5 and all(e["install"] for e in accelerators)


def test_devices_here_says_installed_available_and_not_present():
    from edgekit import devices

    entries = devices()
    states = {(e.format, e.runtime, e.name): e.state for e in entries}
    assert states[("onnx", "onnxruntime", "onnxruntime")] == "installed"
    assert states[("onnx", "onnxruntime", "CPUExecutionProvider")] == "available"
    assert states[("openvino", "openvino", "CPU")] == "available"
    assert states[("tflite", "tflite-runtime", "tflite-runtime")] == "missing"  # not installable beside numpy 2
    assert states[("onnx", "onnxruntime", "CUDAExecutionProvider")] == "not present"  # no GPU on this machine
    assert all(e.install for e in entries if e.state in ("missing", "not present"))
