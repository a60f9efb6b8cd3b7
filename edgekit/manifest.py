"""edgekit-manifest.json: what was built, from what, with which tools, and how it validated."""
from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from edgekit._version import __version__
from edgekit.atomic import atomic_write_text
from edgekit.specs import Build

MANIFEST_NAME = "edgekit-manifest.json"
#: 2: verdicts with intervals (passed/failed/inconclusive), output kinds, data origin and the calibration/validation split
SCHEMA_VERSION = 2
_LIBRARIES = (
    "tensorflow", "tf-keras", "keras", "torch", "onnx", "onnxruntime", "onnxscript", "openvino", "nncf",
    "ai-edge-litert", "tf2onnx", "litert-torch", "numpy",
)


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Versions of the packages of ``names`` that are installed (read from metadata, nothing imported)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def library_versions() -> dict[str, str]:
    """Installed versions of the converters and runtimes."""
    return {"edgekit": __version__, "python": platform.python_version(), **installed_versions(_LIBRARIES)}


def write_manifest(build: Build, config: dict[str, Any]) -> Path:
    """Write the manifest of ``build`` atomically; it is the last file a build writes."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": build.verdict,
        "config": config,
        "versions": library_versions(),
        **build.model_dump(mode="json", exclude={"manifest_path", "output_dir"}),
    }
    path = Path(build.manifest_path)
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` (a file or a build folder) as a dict."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8"))
