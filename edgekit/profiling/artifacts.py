"""The artifacts a profiling run measures: files (sniffed by content, with their companions) or a build folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from edgekit.errors import ModelFileError

MANIFEST = "edgekit-manifest.json"


class ArtifactRef(BaseModel):
    """An artifact to profile: its main file, companion files and what the manifest says of it."""

    model_config = ConfigDict(frozen=True)

    path: Path
    format: str
    precision: str | None = None
    files: tuple[Path, ...]
    size_bytes: int


def resolve_artifacts(target: str | Path | list[str | Path]) -> list[ArtifactRef]:
    """Artifacts named by ``target``: files, or a build folder (every artifact of its manifest)."""
    if isinstance(target, (list, tuple)):
        return [ref for item in target for ref in resolve_artifacts(item)]
    path = Path(target)
    if not path.exists():
        raise ModelFileError(f"artifact not found: {path}", "give a .tflite, .onnx or OpenVINO .xml file, or a build folder")
    if path.is_dir():
        entries = manifest_entries(path)
        if not entries:
            raise ModelFileError(f"{path} has no {MANIFEST}", "give a build folder written by edgekit convert, or artifact files")
        return [ref_from_entry(path, entry) for entry in entries]
    for entry in manifest_entries(path.parent):
        if Path(entry["path"]).name == path.name:
            return [ref_from_entry(path.parent, entry)]
    from edgekit.formats.sniff import sniff_artifact

    fmt = sniff_artifact(path)
    files = fmt.files(path)
    return [ArtifactRef(path=path, format=fmt.name, files=files, size_bytes=sum(f.stat().st_size for f in files))]


def manifest_entries(folder: Path) -> list[dict[str, Any]]:
    """The artifact entries of the manifest in ``folder`` (none without one), read by ``edgekit.manifest``."""
    from edgekit.manifest import read_manifest

    if not (folder / MANIFEST).is_file():
        return []
    entries = read_manifest(folder)["artifacts"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "path" in e for e in entries):
        raise ModelFileError(f"{folder / MANIFEST} lists its artifacts in a form edgekit cannot read", "rebuild the artifacts")
    return entries


def ref_from_entry(folder: Path, entry: dict[str, Any]) -> ArtifactRef:
    files = tuple(folder / Path(f).name for f in entry.get("files") or [entry["path"]])
    main = folder / Path(entry["path"]).name
    for file in files:
        if not file.is_file():
            raise ModelFileError(f"{file} listed in the manifest is missing", "rebuild the artifacts or copy the whole folder")
    return ArtifactRef(path=main, format=entry["format"], precision=entry.get("precision"), files=files,
                       size_bytes=sum(f.stat().st_size for f in files))
