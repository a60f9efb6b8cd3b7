"""Project files and build folders: what the window saves and opens (no Qt here).

A project file (``*.edgekit.json``) holds the convert options and the last build folder; opening a
build folder reads its manifest with ``edgekit.read_manifest``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from edgekit.gui.jobs import ConvertOptions
from pydantic import BaseModel, ConfigDict, ValidationError

PROJECT_SUFFIX = ".edgekit.json"
PROJECT_SCHEMA = 1
MANIFEST = "edgekit-manifest.json"


class Project(BaseModel):
    """A saved run: the options of the Convert view and the build folder it wrote."""

    model_config = ConfigDict(extra="forbid")

    edgekit_project: int = PROJECT_SCHEMA
    options: ConvertOptions = ConvertOptions()
    build_dir: str | None = None

    def save(self, path: str | Path) -> Path:
        """Write the project to ``path`` (``.edgekit.json`` added when the name lacks it); return the path written."""
        from edgekit.atomic import atomic_write_text

        path = project_path(path)
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Project:
        from edgekit.errors import InvalidOptionError

        try:
            return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError) as exc:
            raise InvalidOptionError(f"{Path(path).name} is not an edgekit project file: {_first(exc)}",
                                     "open a file saved with File > Save project") from None


def project_path(path: str | Path) -> Path:
    """``path`` with the project suffix: a name typed without it still reopens as a project."""
    path = Path(path)
    if path.name.endswith(PROJECT_SUFFIX):
        return path
    stem = path.name.removesuffix(".json").removesuffix(".edgekit")
    return path.with_name(stem + PROJECT_SUFFIX)


def kind_of_path(path: str | Path) -> Literal["build", "project", "model"]:
    """What a path given to the app names: a build folder (with a manifest), a project file, or a model."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return "build"
    if path.is_file():  # sniffed by content: a project saved under any name is still a project
        try:
            with open(path, "rb") as handle:
                text = handle.read(1 << 20)
            if text.lstrip()[:1] == b"{":
                head = json.loads(text)
                if isinstance(head, dict) and "edgekit_project" in head:
                    return "project"
        except (OSError, ValueError):
            pass
    return "model"


def read_build(folder: str | Path) -> Any:
    """The ``edgekit.Build`` recorded in a build folder's manifest (``edgekit.load_build``)."""
    import edgekit

    return edgekit.load_build(folder)


def _first(exc: BaseException) -> str:
    from edgekit.errors import first_line

    return first_line(exc, 200)
