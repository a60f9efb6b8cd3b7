"""The wheel holds every package: each folder with an __init__.py is listed in pyproject.toml, and a
non-editable install imports the public API and ships the device profiles and op sets."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"edgekit." + ".".join(p.parent.relative_to(ROOT / "edgekit").parts) for p in (ROOT / "edgekit").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    assert found - listed == set()
    assert {"edgekit.converters", "edgekit.gui", "edgekit.device_profiles"} <= listed


@pytest.mark.slow
def test_wheel_contains_packages_and_data(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    if done.returncode != 0 and "setuptools" in done.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(next(tmp_path.glob("edgekit-*.whl"))).namelist()
    for expected in ("edgekit/compat/check.py", "edgekit/divergence/trace.py", "edgekit/converters/keras_tflite.py",
                     "edgekit/device_profiles/cpu-x86.yaml", "edgekit/device_profiles/opsets/edgetpu.yaml",
                     "edgekit/agent/server.py", "edgekit/gui/__init__.py"):
        assert expected in names
