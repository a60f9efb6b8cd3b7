"""The one artifact sniffer: which format a file is, from its first bytes (never from its suffix)."""
from __future__ import annotations

from pathlib import Path

from edgekit.errors import ModelFileError
from edgekit.formats import all_formats
from edgekit.formats.base import ArtifactFormat

HEAD_BYTES = 512


def read_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


def detect(head: bytes, path: Path) -> ArtifactFormat | None:
    """The format whose sniffer accepts ``head`` (the first ``HEAD_BYTES`` of ``path``), or None."""
    return next((fmt for fmt in all_formats() if fmt.sniff(head, path)), None)


def sniff_artifact(path: str | Path) -> ArtifactFormat:
    """The format of the artifact at ``path``, or a ``ModelFileError`` saying what it is not."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"artifact not found: {path}", "give a .tflite, .onnx or OpenVINO .xml file")
    found = detect(read_head(path), path)
    if found is None:
        titles = ", ".join(fmt.title for fmt in all_formats())
        raise ModelFileError(f"{path.name} is not an artifact edgekit runs (by its content: none of {titles})",
                             "give a file that edgekit convert wrote, or a build folder")
    return found
