"""What an output folder already holds, and keeping a previous build aside (no Qt here).

A build replaces its whole output folder atomically (``edgekit.convert``'s rule: a build folder always holds
exactly one consistent build). Before the window writes into a folder that holds a build of another model or
target, it asks; "keep aside" renames the old build to a folder of its own beside it, in one ``rename``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

from edgekit.gui.project import MANIFEST

Choice = Literal["replace", "aside", "cancel"]


def existing_build(folder: str | Path) -> Any | None:
    """The ``edgekit.Build`` recorded in ``folder``, or None when it holds none (or an unreadable one)."""
    import edgekit
    from edgekit.errors import EdgekitError

    if not Path(folder, MANIFEST).is_file():
        return None
    try:
        return edgekit.load_build(folder)
    except EdgekitError:
        return None


def is_other_build(build: Any, model: str, sha256: str | None, target: str) -> bool:
    """Whether ``build`` was made from another model or for another target than the one about to be built."""
    if build.target != target:
        return True
    if sha256 and build.source.sha256:
        return build.source.sha256 != sha256
    return Path(build.source.path or "").name != Path(model).name


def describe(build: Any) -> str:
    """One line on a recorded build: model, target and artifacts."""
    names = ", ".join(f"{a.format} {a.precision}" for a in build.artifacts) or "no artifacts"
    return f"{Path(build.source.path or '?').name} for {build.target} ({names})"


def aside_path(folder: str | Path, build: Any) -> Path:
    """A free folder beside ``folder`` named after the old build's target and time: ``out-cpu-x86-20261201-2331``."""
    folder = Path(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(Path(folder, MANIFEST).stat().st_mtime))
    candidate = folder.with_name(f"{folder.name}-{build.target}-{stamp}")
    index = 2
    while candidate.exists():
        candidate = folder.with_name(f"{folder.name}-{build.target}-{stamp}-{index}")
        index += 1
    return candidate


def keep_aside(folder: str | Path, build: Any) -> Path:
    """Move the build in ``folder`` to :func:`aside_path` in one rename; return where it went."""
    target = aside_path(folder, build)
    os.rename(folder, target)
    return target
