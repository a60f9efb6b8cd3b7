"""Identify what a model file is from its bytes, never from its extension."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ModelFileError, UnsafeModelError
from edgekit.limits import check_regular_file

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Sniffed:
    """The kind of a model file and the framework that loads it."""

    kind: str  # h5, savedmodel, keras-file, torchscript, pt2, onnx
    framework: str  # keras2, keras3, torch, onnx
    path: Path


def sniff(path: Path) -> Sniffed:
    """Tell what ``path`` holds, or raise ModelFileError / UnsafeModelError."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model not found: {path}", "check the path")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return Sniffed("savedmodel", "keras2", path)
        raise ModelFileError(
            f"{path} is a folder but not a SavedModel (no saved_model.pb)",
            "give a model file (.keras, .h5, .pt, .pt2, .onnx) or a SavedModel folder",
        )
    check_regular_file(path, "a model")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes)", "the file was not written completely; export the model again")
    from edgekit.formats.sniff import detect, read_head

    head = read_head(path)
    if head.startswith(HDF5_MAGIC):
        return Sniffed("h5", "keras2", path)
    if head.startswith(ZIP_MAGIC):
        return _sniff_zip(path)
    artifact = detect(head, path)
    if artifact is not None:
        if artifact.source_framework is not None:
            return Sniffed(artifact.name, artifact.source_framework, path)
        raise ModelFileError(
            f"{path} is already a {artifact.title} artifact",
            "edgekit converts from Keras, PyTorch and ONNX sources; run it with edgekit profile or edgekit check",
        )
    if head[:1] in (b"\x80",) and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise UnsafeModelError(
            f"{path} is a Python pickle (a legacy torch.save file); unpickling it can run arbitrary code",
            "load the weights into your nn.Module yourself and pass the module with example_inputs=, "
            "or export it with torch.export / torch.onnx.export",
        )
    if _is_text(head[:64]):
        raise ModelFileError(
            f"{path} is a text file, not a model",
            "give a model file (.keras, .h5, .pt, .pt2, .onnx) or a SavedModel folder",
        )
    raise ModelFileError(
        f"{path} is not a model edgekit recognises",
        "supported: Keras (.keras, .h5, SavedModel), PyTorch (TorchScript .pt, torch.export .pt2), ONNX (.onnx)",
    )


def _sniff_zip(path: Path) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "metadata.json" in names and "config.json" in names:
                import json

                meta = json.loads(archive.read("metadata.json").decode("utf-8", "replace") or "{}")
                version = str(meta.get("keras_version", "3"))
                return Sniffed("keras-file", "keras2" if version.startswith("2.") else "keras3", path)
            tops = {n.split("/", 1)[1] if "/" in n else n for n in names}
            if any(n.endswith("archive_format") for n in names) or any(t.startswith("models/") for t in tops):
                return Sniffed("pt2", "torch", path)
            if any(t.startswith("code/") for t in tops) and "data.pkl" in tops:
                return Sniffed("torchscript", "torch", path)
            if "data.pkl" in tops:
                raise UnsafeModelError(
                    f"{path} is a torch.save checkpoint (a state dict or a pickled module), not a model with its graph",
                    "build your nn.Module in Python, load the weights with torch.load(..., weights_only=True), "
                    "and pass the module with example_inputs=",
                )
    except zipfile.BadZipFile:
        raise ModelFileError(
            f"{path} is a damaged or truncated zip archive", "export or copy the model again"
        ) from None
    raise ModelFileError(
        f"{path} is a zip archive but not a Keras, TorchScript or torch.export model",
        "supported archives: .keras, TorchScript .pt, torch.export .pt2",
    )


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)
