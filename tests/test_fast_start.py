"""`import edgekit` and `edgekit --help` must not import TensorFlow, PyTorch or OpenVINO."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "tf_keras", "keras", "torch", "openvino", "nncf", "onnxruntime", "onnx", "tf2onnx", "jax")

CHECK = """
import sys
{body}
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def _heavy_after(body: str) -> str:
    code = CHECK.format(body=body, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1].removeprefix("HEAVY:")


def test_import_edgekit_loads_no_framework():
    assert _heavy_after("import edgekit; edgekit.__version__") == ""


def test_public_api_names_resolve_without_frameworks():
    body = ("import edgekit; edgekit.convert; edgekit.inspect; edgekit.load_profile; edgekit.Build; edgekit.open_runner;"
            " edgekit.devices; edgekit.DeviceEntry; from edgekit.formats import all_formats; all_formats()")
    assert _heavy_after(body) == ""


def test_cli_help_loads_no_framework():
    body = (
        "from edgekit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "try:\n    main(['convert', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "try:\n    main(['devices', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0"
    )
    assert _heavy_after(body) == ""


def test_version_flag():
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    import edgekit

    assert edgekit.__version__ in done.stdout
