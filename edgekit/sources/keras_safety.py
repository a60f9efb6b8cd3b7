"""Checks run on a Keras model file BEFORE any Keras code opens it.

Keras 3 enforces ``safe_mode`` itself; ``tf_keras`` does not for ``.h5`` files and SavedModels, so the
model config is read here (as plain JSON) and refused when it would deserialize Python code
(a ``Lambda`` layer, a marshalled function) or needs a class Keras does not ship.
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from edgekit.errors import ModelFileError, UnsafeModelError, first_line

MAX_ARCHIVE_BYTES = 8 << 30  # total uncompressed size of a .keras archive
MAX_ARCHIVE_MEMBERS = 10_000
MAX_RATIO = 1000  # uncompressed / compressed, for members over RATIO_FLOOR bytes
RATIO_FLOOR = 64 << 20

UNSAFE_HINT = (
    "only if you trust where this file comes from, allow it with allow_unsafe=True "
    "(Python API) or --allow-unsafe (CLI)"
)
# Layers that always carry Python code in their config.
_CODE_LAYERS = {"Lambda"}
# tf_keras layers that name a TensorFlow API symbol (resolved by name, no code is unmarshalled).
_KERAS2_EXTRA_CLASSES = {"Functional", "TFOpLambda", "SlicingOpLambda", "Policy", "InputSpec", "TensorShape", "TypeSpec"}
# Ops a Keras SavedModel's serving graph has no reason to contain and that touch files or run Python.
_DANGEROUS_OPS = {"ReadFile", "WriteFile", "DeleteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc"}


def check_h5(path: Path, allow_unsafe: bool) -> None:
    """Refuse an ``.h5`` model whose config holds code or unknown classes, without loading it."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except OSError as exc:
        raise ModelFileError(
            f"{path} is a damaged or truncated HDF5 file: {first_line(exc)}", "export or copy the model again"
        ) from None
    if raw is None:
        raise ModelFileError(
            f"{path} is an HDF5 file without a model config (it holds weights only)",
            "save the whole model (model.save('model.h5') or, better, model.save('model.keras'))",
        )
    config = _parse_json(raw.decode("utf-8") if isinstance(raw, bytes) else raw, path)
    scan_config(config, "keras2", allow_unsafe, path)


def check_keras_zip(path: Path, framework: str, allow_unsafe: bool) -> None:
    """Check a ``.keras`` archive's members (paths, sizes, CRCs) and its config before Keras reads it."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_members(infos, path)
            for info in infos:  # decompress everything once: bounded by the checked sizes, verifies CRCs
                with archive.open(info) as member:
                    while member.read(1 << 20):
                        pass
            config = _parse_json(archive.read("config.json").decode("utf-8", "replace"), path)
    except (zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path} is a damaged .keras archive: {exc}", "export or copy the model again") from None
    scan_config(config, framework, allow_unsafe, path)


def check_savedmodel(path: Path, allow_unsafe: bool) -> None:
    """Check a SavedModel folder: no links out of it, a safe Keras config, no file or Python ops."""
    root = path.resolve()
    for item in path.rglob("*"):
        if not item.resolve().is_relative_to(root):
            raise UnsafeModelError(f"{item} points outside the SavedModel folder {path}", "copy the real files into the folder")
    metadata = path / "keras_metadata.pb"
    if metadata.is_file():
        for config in _keras_metadata_configs(metadata):
            scan_config(config, "keras2", allow_unsafe, path)
    if not allow_unsafe:
        found = sorted(_savedmodel_ops(path / "saved_model.pb") & _DANGEROUS_OPS)
        if found:
            raise UnsafeModelError(
                f"{path} contains TensorFlow ops that read or write files or run Python: {', '.join(found)}", UNSAFE_HINT
            )


def scan_config(config: Any, framework: str, allow_unsafe: bool, path: Path | str) -> None:
    """Raise UnsafeModelError for code in a Keras config and ModelFileError for classes Keras does not ship."""
    shipped = _keras2_class_check() if framework == "keras2" else _keras3_class_check
    for node in _class_nodes(config):
        name = str(node["class_name"])
        inner = node.get("config") if isinstance(node.get("config"), dict) else {}
        if not allow_unsafe and (name in _CODE_LAYERS or name == "__lambda__" or "function_type" in inner):
            layer = inner.get("name", name)
            raise UnsafeModelError(
                f"{path} contains a {name} layer '{layer}' whose Python code would run when the model is loaded",
                UNSAFE_HINT,
            )
        if not name.startswith("__") and name not in _CODE_LAYERS and not shipped(node):
            raise ModelFileError(
                f"{path} uses the custom class '{name}' (layer '{inner.get('name', '?')}') that Keras does not ship",
                "load the model yourself with custom_objects= and pass the in-memory model to edgekit",
            )


def _class_nodes(config: Any) -> Iterator[dict]:
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _keras2_class_check():
    import tf_keras

    spaces = (tf_keras.layers, tf_keras.models, tf_keras.initializers, tf_keras.regularizers, tf_keras.constraints)
    return lambda node: node["class_name"] in _KERAS2_EXTRA_CLASSES or any(hasattr(s, node["class_name"]) for s in spaces)


def _keras3_class_check(node: dict) -> bool:
    """Keras' own classes (module ``keras`` / ``keras.*``) or classes registered in this process by imported code."""
    module = node.get("module")
    if module is None or module == "keras" or str(module).startswith("keras."):
        return True
    import keras

    registered = node.get("registered_name")
    return bool(registered) and keras.saving.get_registered_object(registered) is not None


def _check_members(infos: list[zipfile.ZipInfo], path: Path) -> None:
    if len(infos) > MAX_ARCHIVE_MEMBERS:
        raise UnsafeModelError(f"{path} has {len(infos)} members, more than a Keras model has", "export the model again")
    total = 0
    for info in infos:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or ":" in info.filename:
            raise UnsafeModelError(f"{path} has a member with an unsafe path: {info.filename!r}", "export the model again")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeModelError(
                f"{path}: member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}x "
                "(a zip bomb?)",
                "export the model again",
            )
        total += info.file_size
    if total > MAX_ARCHIVE_BYTES:
        raise UnsafeModelError(
            f"{path} expands to {total / 2**30:.1f} GiB, over the {MAX_ARCHIVE_BYTES / 2**30:.0f} GiB limit",
            "export the model again; edgekit does not open archives this large",
        )


def _parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path} has a model config that is not valid JSON: {exc}", "export the model again") from None


def _keras_metadata_configs(metadata: Path) -> Iterator[Any]:
    from google.protobuf.message import DecodeError
    from tf_keras.protobuf import saved_metadata_pb2

    proto = saved_metadata_pb2.SavedMetadata()
    try:
        proto.ParseFromString(metadata.read_bytes())
    except DecodeError as exc:
        raise ModelFileError(f"{metadata} is damaged: {exc}", "export the model again") from None
    for node in proto.nodes:
        yield _parse_json(node.metadata, metadata)


def _savedmodel_ops(saved_model_pb: Path) -> set[str]:
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(saved_model_pb.read_bytes())
    except DecodeError as exc:
        raise ModelFileError(f"{saved_model_pb} is damaged: {exc}", "export the model again") from None
    ops: set[str] = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops
