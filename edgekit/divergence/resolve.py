"""Find what a trace needs: the artifact's format, its float reference, its inputs and the data."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import DataError, EdgekitError, ModelFileError
from edgekit.specs import TensorSpec


def artifact_format(path: Path) -> str:
    """The artifact's format, from its content."""
    from edgekit.formats.sniff import sniff_artifact

    return sniff_artifact(path).name


def _manifest_entries(path: Path) -> list[dict[str, Any]]:
    from edgekit.errors import ManifestError
    from edgekit.manifest import MANIFEST_NAME, load_build

    if not (path.parent / MANIFEST_NAME).is_file():
        return []
    try:
        return [artifact.model_dump(mode="json") for artifact in load_build(path.parent).artifacts]
    except ManifestError:
        return []


def precision_of(path: Path) -> str:
    """The artifact's precision from the manifest beside it, else from its file name."""
    for entry in _manifest_entries(path):
        if Path(entry.get("path", "")).name == path.name:
            return str(entry.get("precision"))
    return next((p for p in ("int8", "fp16", "dynamic", "fp32") if p in path.stem), "unknown")


def find_reference(path: Path, fmt: str, reference: str | Path | None) -> Path:
    """The given float model, or the fp32 artifact of the same format in the build folder's manifest."""
    if reference is not None:
        ref = Path(reference)
        if not ref.is_file():
            raise ModelFileError(f"the reference {ref} does not exist", "give a float model of the same format as the artifact")
        if artifact_format(ref) != fmt:
            raise EdgekitError(
                f"the reference {ref.name} is not a {fmt} model; layers can only be matched within one format",
                f"give the fp32 {fmt} artifact of the same build (edgekit convert --precision fp32)",
            )
    else:
        entries = [e for e in _manifest_entries(path) if e.get("format") == fmt and e.get("precision") == "fp32"]
        if not entries:
            raise EdgekitError(
                f"no float reference for {path.name}: the folder has no manifest listing an fp32 {fmt} artifact",
                "build fp32 too (--precision fp32 --precision int8) or pass --reference FLOAT_MODEL",
            )
        ref = path.parent / Path(entries[0]["path"]).name
        if not ref.is_file():
            raise ModelFileError(f"the manifest's fp32 artifact {ref.name} is missing", "rebuild, or pass --reference")
    if ref.resolve() == path.resolve():
        raise EdgekitError(f"{path.name} is its own reference", "give the float model it was converted from")
    return ref


def input_specs(path: Path, reference: Path, fmt: str) -> tuple[TensorSpec, ...]:
    """The source model's inputs from the manifest, else the reference runtime's."""
    from edgekit.errors import ManifestError
    from edgekit.manifest import MANIFEST_NAME, load_build

    if (path.parent / MANIFEST_NAME).is_file():
        try:
            return load_build(path.parent).source.inputs
        except ManifestError:
            pass
    from edgekit.formats.runner import open_runner

    return open_runner(reference, fmt).inputs


def read_feeds(data: Any, inputs: tuple[TensorSpec, ...], what: str, limit: int) -> list[dict]:
    """At most ``limit`` checked feeds of ``data``; a clear error when they do not fit the model."""
    from edgekit.data import load_feeds

    if data is None:
        raise DataError(f"no {what} data given", "give an array, a .npy/.npz file or an image folder")
    return load_feeds(data, inputs, what=what, limit=limit)
