"""The format table: the one place that lists the artifact formats edgekit writes and runs.

Each entry names a package under ``edgekit.formats`` whose ``FORMAT`` (an ``ArtifactFormat``) declares
everything about that format. Packages are imported on first use. Adding a format is one package plus one
line here.
"""
from __future__ import annotations

import importlib
from functools import cache

from edgekit.formats.base import ArtifactFormat
from edgekit.registry import unique_table


def format_table(entries: list[tuple[str, str]]) -> dict[str, str]:
    """The format table from (name, package) entries; a name given twice is an error."""
    return unique_table(entries, lambda name: f"artifact format '{name}'")


FORMATS: dict[str, str] = format_table([
    ("tflite", "edgekit.formats.tflite"),
    ("onnx", "edgekit.formats.onnx"),
    ("openvino", "edgekit.formats.openvino"),
    ("executorch", "edgekit.formats.executorch"),
])


@cache
def get_format(name: str) -> ArtifactFormat:
    """The ``ArtifactFormat`` called ``name``, or an error listing the ones that exist."""
    module = FORMATS.get(name)
    if module is None:
        from edgekit.errors import InvalidOptionError, did_you_mean

        raise InvalidOptionError(f"unknown artifact format '{name}'", f"{did_you_mean(name, FORMATS)}choose from: {', '.join(FORMATS)}")
    return importlib.import_module(module).FORMAT


def all_formats() -> list[ArtifactFormat]:
    return [get_format(name) for name in FORMATS]


__all__ = ["FORMATS", "ArtifactFormat", "all_formats", "format_table", "get_format"]
