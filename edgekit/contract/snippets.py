"""Reference pre/post-processing code per artifact (filled in later slices)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def write_snippets(artifacts: list[Any], folder: Path) -> list[Path]:
    return []
