"""Trainable ``tf_keras`` copies of Keras models: tfmot trains Keras 2 (tf_keras) models only.

A tf_keras model is cloned with its weights. A Keras 3 model is rebuilt layer by layer: each layer becomes
the tf_keras layer of the same class made from its config (initializers, regularizers and constraints
translated), called on the same graph, and given the same weights; the rebuilt model's outputs are then
checked against the original's. Layers with no tf_keras equivalent (custom layers, ``Lambda``, raw
``keras.ops`` calls, nested models) are refused by name.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError

# keyword arguments tf_keras' base Layer accepts besides its own parameters
_LAYER_KWARGS = {"trainable", "name", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                 "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}
_NESTED = {"keras.initializers": "initializers", "keras.regularizers": "regularizers", "keras.constraints": "constraints"}
#: rebuilt outputs may differ from the original's by at most this, relative to the output's largest magnitude
PARITY_TOLERANCE = 1e-4


def is_tf_keras(model: Any) -> bool:
    return any(cls.__module__.startswith("tf_keras") for cls in type(model).__mro__)


def is_keras3(model: Any) -> bool:
    return any(cls.__module__.startswith("keras.src") for cls in type(model).__mro__)


def tf_keras_copy(model: Any) -> Any:
    """A tf_keras copy of a tf_keras or Keras 3 model, weights included; ``model`` is not touched."""
    if is_tf_keras(model):
        return clone_with_weights(model)
    if is_keras3(model):
        rebuilt = _rebuild_keras3(model)
        check_parity(model, rebuilt)
        return rebuilt
    raise InvalidOptionError(
        f"edgekit cannot train an object of type {type(model).__module__}.{type(model).__qualname__} with the Keras backend",
        "pass a tf_keras or Keras 3 model",
    )


def clone_with_weights(model: Any, clone_function: Any = None) -> Any:
    """``tf_keras.models.clone_model`` with every layer's weights copied by layer name."""
    import tf_keras

    if not getattr(model, "inputs", None):
        raise InvalidOptionError(
            f"the model {model.name!r} has no symbolic inputs (a subclassed or unbuilt model)",
            "build it with the functional API or as a Sequential with an Input layer",
        )
    clone = tf_keras.models.clone_model(model, clone_function=clone_function)
    copy_weights(model, clone)
    return clone


def copy_weights(source: Any, target: Any) -> None:
    """Copy weights layer by layer (matched by name; a wrapper's inner layer counts as the layer)."""
    for layer in target.layers:
        inner = unwrap(layer)
        weights = source.get_layer(inner.name).get_weights()
        if weights:
            inner.set_weights(weights)


def unwrap(layer: Any) -> Any:
    """The layer inside a tfmot pruning or quantization wrapper (the layer itself otherwise)."""
    wrapped = type(layer).__module__.startswith("tensorflow_model_optimization") and hasattr(layer, "layer")
    return layer.layer if wrapped else layer


def check_parity(original: Any, rebuilt: Any, samples: int = 4) -> float:
    """Max abs difference of the two models' outputs on random inputs; raise if above :data:`PARITY_TOLERANCE`."""
    rng = np.random.default_rng(0)
    feeds = []
    for tensor in original.inputs:
        shape = [samples if i == 0 and d is None else (8 if d is None else int(d)) for i, d in enumerate(tensor.shape)]
        feeds.append(rng.standard_normal(shape).astype(str(getattr(tensor.dtype, "name", tensor.dtype))))
    feed = feeds[0] if len(feeds) == 1 else feeds
    want = [np.asarray(v) for v in _as_list(original(feed, training=False))]
    got = [np.asarray(v) for v in _as_list(rebuilt(feed, training=False))]
    error = max(float(np.max(np.abs(w - g))) for w, g in zip(want, got, strict=True))
    scale = max(1.0, max(float(np.max(np.abs(w))) for w in want))
    if error > PARITY_TOLERANCE * scale:
        raise InvalidOptionError(
            f"the tf_keras rebuild of {original.name!r} does not compute what the Keras 3 model computes "
            f"(max abs error {error:.3g})",
            "give the model as a tf_keras model, or report the layers it uses to the edgekit maintainers",
        )
    return error


def _as_list(value: Any) -> list:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _rebuild_keras3(model: Any) -> Any:
    import keras
    import tensorflow as tf
    import tf_keras

    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_nodes_by_depth") or not model.inputs:
        raise InvalidOptionError(
            f"the Keras 3 model {model.name!r} is not a functional or Sequential model with an Input",
            "build it with keras.Input(...) -> keras.Model, or as a Sequential starting with keras.Input",
        )
    nodes = [node for depth in sorted(graph._nodes_by_depth, reverse=True) for node in graph._nodes_by_depth[depth]]
    refused = [_describe(n.operation) for n in nodes if _tf_keras_class(n.operation, tf_keras) is None]
    if refused:
        raise InvalidOptionError(
            f"these layers have no tf_keras equivalent, so the model cannot be pruned or quantization-aware trained: "
            f"{', '.join(dict.fromkeys(refused))}",
            "replace them with built-in Keras layers (Lambda and custom layers cannot be rebuilt), "
            "or leave out the training-time optimization steps",
        )
    tensors: dict[int, Any] = {}
    layers: dict[int, Any] = {}
    for node in nodes:
        operation = node.operation
        if type(operation).__name__ == "InputLayer":
            config = operation.get_config()
            tensors[id(node.outputs[0])] = tf_keras.Input(
                batch_shape=config["batch_shape"], dtype=config["dtype"], name=config["name"], sparse=config.get("sparse", False)
            )
            continue
        if id(operation) not in layers:
            layers[id(operation)] = _tf_keras_layer(operation, tf_keras)
        args = keras.tree.map_structure(lambda v: tensors[id(v)] if isinstance(v, keras.KerasTensor) else v, node.arguments.args)
        kwargs = keras.tree.map_structure(
            lambda v: tensors[id(v)] if isinstance(v, keras.KerasTensor) else v, node.arguments.kwargs
        )
        outputs = layers[id(operation)](*args, **kwargs)
        for original, new in zip(keras.tree.flatten(node.outputs), tf.nest.flatten(outputs), strict=True):
            tensors[id(original)] = new
    inputs = [tensors[id(t)] for t in model.inputs]
    outputs = [tensors[id(t)] for t in keras.tree.flatten(model.outputs)]
    rebuilt = tf_keras.Model(
        inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs, name=model.name
    )
    for operation_id, layer in layers.items():
        source = next(n.operation for n in nodes if id(n.operation) == operation_id)
        _set_weights(source, layer)
    return rebuilt


def _tf_keras_class(operation: Any, tf_keras: Any) -> type | None:
    cls = type(operation)
    if not cls.__module__.startswith("keras.src.layers") or cls.__name__ in ("Lambda", "TFSMLayer"):
        return None
    return getattr(tf_keras.layers, cls.__name__, None)


def _describe(operation: Any) -> str:
    return f"{operation.name} ({type(operation).__name__})"


def _tf_keras_layer(operation: Any, tf_keras: Any) -> Any:
    cls = _tf_keras_class(operation, tf_keras)
    accepted = _accepted_kwargs(cls)
    kwargs = {}
    for key, value in operation.get_config().items():
        if key not in accepted:
            if value in (None, False, 0, (), [], {}):
                continue  # a Keras 3 option left at its off value (lora_rank, quantization_config, ...)
            raise InvalidOptionError(
                f"layer {_describe(operation)} sets {key}={value!r}, which tf_keras has no equivalent for",
                "leave that option at its default, or give the model as a tf_keras model",
            )
        kwargs[key] = _translate(key, value, operation, tf_keras)
    return cls(**kwargs)


def _accepted_kwargs(cls: type) -> set[str]:
    accepted: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        accepted.update(n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self")
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    return accepted | _LAYER_KWARGS


def _translate(key: str, value: Any, operation: Any, tf_keras: Any) -> Any:
    """A Keras 3 config value as tf_keras takes it: dtype policies by name, initializers etc. as tf_keras objects."""
    if not isinstance(value, dict) or "class_name" not in value:
        return value
    if key == "dtype":
        return value["config"]["name"]
    namespace = _NESTED.get(value.get("module", ""))
    cls = getattr(getattr(tf_keras, namespace), value["class_name"], None) if namespace else None
    if cls is None:
        raise InvalidOptionError(
            f"layer {_describe(operation)} has a {key} of class {value['class_name']} that tf_keras does not have",
            "use a built-in Keras initializer, regularizer or constraint",
        )
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return cls(**{k: v for k, v in value.get("config", {}).items() if k in accepted})


def _set_weights(source: Any, layer: Any) -> None:
    weights = [np.asarray(w) for w in source.get_weights()]
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    if [tuple(w.shape) for w in weights] != shapes:
        raise InvalidOptionError(
            f"layer {_describe(source)} holds weights shaped {[w.shape for w in weights]}, its tf_keras rebuild {shapes}",
            "give the model as a tf_keras model",
        )
    layer.set_weights(weights)
