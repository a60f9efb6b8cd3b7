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
from edgekit.errors import ManifestError
from edgekit.specs import Build

MANIFEST_NAME = "edgekit-manifest.json"
#: 2: ``config`` is ``{"plan": BuildPlan serialised, "run": what the build learned}`` (1: requested/effective dicts);
#: verdicts with intervals (passed/failed/inconclusive), output kinds, data origin and the calibration/validation split
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_MANIFEST_BYTES = 64 << 20
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


def manifest_path(path: str | Path) -> Path:
    """The manifest file of ``path``: the file itself, or the manifest in a build folder."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest at ``path`` (a file or a build folder) as a dict; the one place a manifest is parsed.

    Raises ``ManifestError`` when it is missing, too large, not JSON, or not an edgekit manifest of a
    schema version this edgekit reads.
    """
    file = manifest_path(path)
    try:
        size = file.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{file} is {size} bytes, more than a manifest can be", "give the build folder edgekit wrote")
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{file} does not exist", "give a build folder written by edgekit convert, or its manifest") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{file} is not a readable manifest: {exc}", "rebuild the artifacts with edgekit convert") from None
    if not isinstance(document, dict) or "schema_version" not in document or "artifacts" not in document:
        raise ManifestError(f"{file} is not an edgekit manifest", "give a build folder written by edgekit convert")
    if document["schema_version"] not in READABLE_VERSIONS:
        raise ManifestError(
            f"{file} has manifest schema version {document['schema_version']!r}; this edgekit reads {READABLE_VERSIONS}",
            "rebuild the artifacts, or use the edgekit version that wrote them",
        )
    return document


def load_build(path: str | Path) -> Build:
    """The ``Build`` recorded in a build folder's manifest (``path``: the folder or the manifest file).

    Artifact paths are those of the files beside the manifest (the folder may have been moved); the manifest
    is validated field by field and a missing, corrupt or foreign one is a ``ManifestError``.
    """
    from pydantic import ValidationError

    file = manifest_path(path)
    document = read_manifest(file)
    folder = file.parent
    fields = {key: document[key] for key in Build.model_fields if key in document}
    try:
        fields["artifacts"] = [_in_folder(entry, folder) for entry in fields.get("artifacts", [])]
        return Build.model_validate({**fields, "output_dir": str(folder), "manifest_path": str(file)})
    except (ValidationError, TypeError, KeyError, AttributeError) as exc:
        from edgekit.errors import first_line

        raise ManifestError(f"{file} does not describe a build: {first_line(exc, 300)}",
                            "rebuild the artifacts with edgekit convert") from None


def _in_folder(entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    """An artifact entry with its files taken by name from the manifest's folder (never outside it)."""
    files = [str(folder / Path(name).name) for name in entry.get("files") or [entry["path"]]]
    return {**entry, "path": str(folder / Path(entry["path"]).name), "files": files}
