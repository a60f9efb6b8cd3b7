"""Keras sources: Keras 2 (``tf_keras``: .h5, SavedModel, Keras-2 .keras) and Keras 3 (.keras, in-memory).

Every file is checked by :mod:`edgekit.sources.keras_safety` before a Keras loader sees it.
Keras models are channels-last; inputs are named after their ``Input`` layers and outputs after
``model.output_names``, the names every Keras route keeps in its artifacts.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DataError, InvalidOptionError, ModelFileError, UnsafeModelError, first_line
from edgekit.sources import keras_safety
from edgekit.sources.base import LoadedSource, layout_of, sha256_of
from edgekit.sources.finite import check_finite_weights
from edgekit.sources.sniff import Sniffed
from edgekit.specs import ModelSource, TensorSpec


class KerasSource(LoadedSource):
    """A Keras 2 or Keras 3 model with named inputs and outputs."""

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.spec.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.spec.outputs]

    def predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model in inference mode (``training=False``) on one feed."""
        missing = [name for name in self.input_names if name not in feed]
        if missing:
            raise DataError(
                f"the feed has no value for input(s) {', '.join(missing)}",
                f"the model's inputs are: {', '.join(self.input_names)}",
            )
        arrays = [np.asarray(feed[spec.name], dtype=spec.dtype) for spec in self.spec.inputs]
        result = self.model(arrays[0] if len(arrays) == 1 else arrays, training=False)
        values = output_values(result, self.output_names)
        return {name: np.asarray(value) for name, value in zip(self.output_names, values, strict=True)}


def load_file(sniffed: Sniffed, *, example_inputs: Any = None, allow_unsafe: bool = False) -> KerasSource:
    """Check, then load a Keras model file or SavedModel folder found by :func:`edgekit.sources.sniff.sniff`."""
    path, framework = sniffed.path, sniffed.framework
    if sniffed.kind == "h5":
        keras_safety.check_h5(path, allow_unsafe)
    elif sniffed.kind == "savedmodel":
        keras_safety.check_savedmodel(path, allow_unsafe)
    elif sniffed.kind == "keras-file":
        keras_safety.check_keras_zip(path, framework, allow_unsafe)
    else:
        raise ModelFileError(f"{path} is a {sniffed.kind} file, not a Keras model", "give a .keras, .h5 or SavedModel")
    model = _load(path, framework, allow_unsafe)
    if not _is_keras_model(model):
        raise ModelFileError(
            f"{path} holds no Keras model (a plain TensorFlow SavedModel?)",
            "save the model with Keras: model.save('model.keras')",
        )
    return _make_source(model, framework, sniffed.kind, path, example_inputs)


def from_object(model: Any, framework: str, *, example_inputs: Any = None, allow_unsafe: bool = False) -> KerasSource:
    """Wrap an in-memory ``tf_keras`` (keras2) or Keras 3 model."""
    return _make_source(model, framework, "in-memory", None, example_inputs)


def _load(path: Path, framework: str, allow_unsafe: bool) -> Any:
    try:
        if framework == "keras3":
            return _load_keras3(path, allow_unsafe)
        import tf_keras

        return tf_keras.models.load_model(path, compile=False, safe_mode=not allow_unsafe)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError... for bad files
        first = first_line(exc)
        if "safe_mode" in str(exc) or "unsafe" in first.lower():
            raise UnsafeModelError(f"{path}: Keras refused to load it in safe mode: {first}", keras_safety.UNSAFE_HINT) from exc
        if "Could not locate" in first or "Unknown" in first:
            raise ModelFileError(
                f"{path} needs a custom class Keras does not ship: {first}",
                "load the model yourself with custom_objects= and pass the in-memory model to edgekit",
            ) from exc
        raise ModelFileError(f"cannot load {path}: {first}", "check that the file is a complete Keras model") from exc


def _load_keras3(path: Path, allow_unsafe: bool) -> Any:
    """Keras 3 opens only files named *.keras; a file sniffed as one under another name is linked as such."""
    import keras

    if path.suffix == ".keras":
        return keras.saving.load_model(path, compile=False, safe_mode=not allow_unsafe)
    with tempfile.TemporaryDirectory(prefix="edgekit-keras-") as folder:
        alias = Path(folder) / "model.keras"
        alias.symlink_to(path.resolve())
        return keras.saving.load_model(alias, compile=False, safe_mode=not allow_unsafe)


def _is_keras_model(model: Any) -> bool:
    return any(cls.__name__ == "Model" and cls.__module__.split(".")[0] in ("keras", "tf_keras") for cls in type(model).__mro__)


def _make_source(model: Any, framework: str, kind: str, path: Path | None, example_inputs: Any) -> KerasSource:
    tensors = _model_inputs(model)
    if tensors is None and example_inputs is not None:
        model(example_inputs, training=False)  # builds a Sequential model given without an Input
        tensors = _model_inputs(model)
    if tensors is None:
        raise InvalidOptionError(
            f"the {framework} model {getattr(model, 'name', '')!r} has no symbolic inputs (a subclassed or unbuilt model)",
            "build it with the functional API (keras.Input(...) -> keras.Model) or as a Sequential with an Input layer",
        )
    where = str(path) if path else f"model {getattr(model, 'name', '')!r}"
    check_finite_weights(_named_weights(model), where)
    in_names = list(model.input_names) if framework == "keras2" else [t.name for t in tensors]
    inputs = tuple(_spec(name, t, framework) for name, t in zip(in_names, tensors, strict=True))
    outputs = tuple(_spec(name, t, framework) for name, t in zip(_output_names(model), model.outputs, strict=True))
    spec = ModelSource(
        framework=framework,
        kind=kind,
        path=str(path) if path else None,
        sha256=sha256_of(path) if path else None,
        size_bytes=_size_of(path) if path else None,
        inputs=inputs,
        outputs=outputs,
        task="classifier" if _looks_like_classifier(model, outputs) else "other",
    )
    return KerasSource(spec, model)


def _output_names(model: Any) -> list[str]:
    """``model.output_names``, or for a Keras 3 Sequential (which has none) the names of the output layers."""
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    return [tensor._keras_history.operation.name for tensor in model.outputs]


def _model_inputs(model: Any) -> list | None:
    try:
        tensors = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(tensors) if tensors else None


def _spec(name: str, tensor: Any, framework: str) -> TensorSpec:
    shape = tuple(None if d is None else int(d) for d in tensor.shape)
    dtype = getattr(tensor.dtype, "name", str(tensor.dtype))
    return TensorSpec(name=name, shape=shape, dtype=dtype, layout=layout_of(shape, framework))


def _named_weights(model: Any):
    for layer in model.layers:
        for variable, value in zip(layer.weights, layer.get_weights(), strict=False):
            yield layer.name, getattr(variable, "path", variable.name), value


def _looks_like_classifier(model: Any, outputs: tuple[TensorSpec, ...]) -> bool:
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        return False
    try:
        layer = model.get_layer(outputs[0].name)
    except ValueError:
        layer = model.layers[-1]
    if type(layer).__module__.startswith("tensorflow_model_optimization"):
        layer = getattr(layer, "layer", layer)  # a QAT wrapper (edgekit.qat): the layer it wraps decides
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    units = getattr(layer, "units", 0) or 0
    return activation == "softmax" or type(layer).__name__ == "Softmax" or (type(layer).__name__ == "Dense" and units >= 2)


def output_values(result: Any, names: list[str]) -> list[Any]:
    """A Keras model call's result (a tensor, list or dict) as a list in ``names`` order."""
    if isinstance(result, dict):
        return [result.get(name, value) for name, value in zip(names, result.values(), strict=True)]
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
