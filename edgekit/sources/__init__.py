"""Load a source model safely from a file or an in-memory object.

Heavy frameworks are imported inside the loader that needs them.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.sources.base import LoadedSource
from edgekit.sources.sniff import Sniffed, sniff

# framework -> module holding load_file(sniffed, options) and from_object(obj, options)
_LOADERS = {
    "keras2": "edgekit.sources.keras",
    "keras3": "edgekit.sources.keras",
    "torch": "edgekit.sources.torch",
    "onnx": "edgekit.sources.onnx",
}


def framework_of_object(model: Any) -> str | None:
    """The framework of an in-memory model, found from its class hierarchy without importing anything."""
    for cls in type(model).__mro__:
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        if qualified == "torch.nn.modules.module.Module":
            return "torch"
        if qualified == "onnx.onnx_ml_pb2.ModelProto" or (cls.__module__.startswith("onnx") and cls.__name__ == "ModelProto"):
            return "onnx"
        if cls.__name__ in ("Model", "Functional", "Sequential"):
            if cls.__module__.startswith("tf_keras") or cls.__module__.startswith("keras.src.engine"):
                return "keras2"
            if cls.__module__.startswith("keras"):
                return "keras3"
    return None


def is_in_memory(model: Any) -> bool:
    return not isinstance(model, (str, Path))


def load_source(model: Any, *, example_inputs: Any = None, allow_unsafe: bool = False) -> LoadedSource:
    """Load ``model`` (a path or an in-memory model) into a :class:`LoadedSource`."""
    options = {"example_inputs": example_inputs, "allow_unsafe": allow_unsafe}
    if isinstance(model, (str, Path)):
        found: Sniffed = sniff(Path(model))
        module = importlib.import_module(_LOADERS[found.framework])
        return module.load_file(found, **options)
    framework = framework_of_object(model)
    if framework is None:
        raise InvalidOptionError(
            f"edgekit cannot convert an object of type {type(model).__module__}.{type(model).__qualname__}",
            "pass a path to a model file, a Keras model, a torch.nn.Module (with example_inputs=) or an onnx.ModelProto",
        )
    module = importlib.import_module(_LOADERS[framework])
    return module.from_object(model, framework, **options)
