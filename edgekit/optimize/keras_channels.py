"""Structured (channel) pruning of tf_keras models: filters really removed, the model rebuilt narrower.

The graph is walked once to find *channel groups*: the channels a Conv/Dense/SeparableConv layer produces,
followed through the layers that keep them channel by channel (BatchNormalization, DepthwiseConv, activations,
pooling, padding, dropout), through ``Flatten`` (each channel repeated at every position) and ``Concatenate``.
Branches joined by ``Add``/``Multiply``/... must keep the same channels, so their groups are merged and pruned
together. A group is left whole when it reaches a model output, comes from an input, was excluded by name, or
meets a layer whose channels cannot be followed (Reshape, Softmax, grouped convolutions, unknown layers).
Each prunable group keeps the channels whose producing filters have the largest L1 (or L2) norm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgekit.errors import InvalidOptionError

_PRODUCERS = {"Conv1D", "Conv2D", "Conv3D", "Dense", "SeparableConv1D", "SeparableConv2D"}
_DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
_PASS_THROUGH = {
    "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
    "Identity", "ActivityRegularization",
}
_MERGE = {"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"}
# a tensor's last axis: parts concatenated along it, each (channel groups in order, times repeated by Flatten)
Parts = tuple[tuple[tuple[int, ...], int], ...]


@dataclass
class _Graph:
    sizes: dict[int, int]
    parent: dict[int, int]
    blocked: set[int]
    producers: dict[str, int]  # producer layer name -> its output group
    inputs: dict[str, Parts]  # layer name -> channel parts of its (first) input

    def find(self, group: int) -> int:
        while self.parent[group] != group:
            self.parent[group] = self.parent[self.parent[group]]
            group = self.parent[group]
        return group

    def new(self, size: int | None, blocked: bool = False) -> int:
        group = len(self.sizes)
        self.sizes[group], self.parent[group] = int(size or 0), group
        if blocked or not size:
            self.blocked.add(group)
        return group

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a

    def block(self, parts: Parts) -> None:
        for groups, _ in parts:
            self.blocked.update(groups)

    def prunable(self, group: int) -> bool:
        root = self.find(group)
        return not any(self.find(g) == root for g in self.blocked)


def prune_channels(model: Any, sparsity: float, *, exclude: tuple[str, ...] = (), norm: Literal["l1", "l2"] = "l1") -> Any:
    """A narrower tf_keras copy of ``model``: ``sparsity`` of the channels of every prunable group removed."""
    graph = _analyse(model, exclude)
    roots = {graph.find(g) for g in graph.producers.values() if graph.prunable(g)}
    if not roots:
        raise InvalidOptionError(
            f"no channels of {model.name!r} can be removed: every Conv/Dense layer feeds an output, an excluded "
            "layer or a layer whose channels cannot be followed (Reshape, Softmax, custom layers)",
            "use unstructured pruning (structured=False) for this model",
        )
    keep = {root: _strongest(model, graph, root, sparsity, norm) for root in roots}
    return _rebuild(model, graph, keep)


def _analyse(model: Any, exclude: tuple[str, ...]) -> _Graph:
    graph = _Graph(sizes={}, parent={}, blocked=set(), producers={}, inputs={})
    parts_of: dict[tuple[str, int, int], Parts] = {}

    def key(tensor: Any) -> tuple[str, int, int]:
        history = tensor._keras_history
        return history.layer.name, history.node_index, history.tensor_index

    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.layer
            ins = [parts_of[key(t)] for t in node.keras_inputs]
            outs = _flat(node.outputs)
            for tensor, parts in zip(outs, _propagate(layer, ins, outs, graph, exclude), strict=True):
                parts_of[key(tensor)] = parts
    for tensor in _flat(model.outputs):
        graph.block(parts_of[key(tensor)])
    return graph


def _flat(value: Any) -> list:
    import tensorflow as tf

    return tf.nest.flatten(value)


def _plain(graph: _Graph, tensor: Any, blocked: bool = True) -> Parts:
    return (((graph.new(tensor.shape[-1] if tensor.shape.rank else None, blocked),), 1),)


def _propagate(layer: Any, ins: list[Parts], outs: list, graph: _Graph, exclude: tuple[str, ...]) -> list[Parts]:
    """The channel parts of a layer's outputs; records what it consumes and blocks what it cannot follow."""
    kind, config = type(layer).__name__, layer.get_config()
    if kind == "InputLayer":
        return [_plain(graph, t) for t in outs]
    first = ins[0] if ins else None
    channels_last = config.get("data_format", "channels_last") == "channels_last"
    if kind in _PRODUCERS and config.get("groups", 1) == 1 and config.get("depth_multiplier", 1) == 1 and channels_last:
        if kind != "Dense" and any(spatial != 1 for _, spatial in first):
            graph.block(first)
        _consume(layer.name, first, graph)
        if layer.name not in graph.producers:  # a softmax's outputs depend on all of its channels
            whole = layer.name in exclude or config.get("activation") == "softmax"
            graph.producers[layer.name] = graph.new(outs[0].shape[-1], blocked=whole)
        return [(((graph.producers[layer.name],), 1),)]
    if kind in _DEPTHWISE and config.get("depth_multiplier", 1) == 1 and channels_last or \
            kind == "BatchNormalization" and config["axis"] in (-1, [-1], len(outs[0].shape) - 1, [len(outs[0].shape) - 1]):
        _consume(layer.name, first, graph)
        return [first]
    if kind in _PASS_THROUGH and channels_last or kind == "Activation" and config["activation"] != "softmax":
        return [first]
    if kind == "Flatten" and channels_last and len(ins) == 1:
        shape = layer.input_shape
        if len(shape) == 2:
            return [first]
        if all(d is not None for d in shape[1:-1]) and all(spatial == 1 for _, spatial in first):
            return [((tuple(g for groups, _ in first for g in groups), int(np.prod(shape[1:-1]))),)]
    if kind in _MERGE and len({len(p) for p in ins}) == 1:
        if len({tuple((len(g), s) for g, s in p) for p in ins}) == 1:
            for other in ins[1:]:
                for (a, _), (b, _) in zip(first, other, strict=True):
                    for x, y in zip(a, b, strict=True):
                        graph.union(x, y)
            return [first]
    if kind == "Concatenate" and config["axis"] in (-1, len(outs[0].shape) - 1):
        return [tuple(part for parts in ins for part in parts)]
    for parts in ins:  # a layer whose channels cannot be followed: its inputs and outputs stay whole
        graph.block(parts)
    return [_plain(graph, t) for t in outs]


def _consume(name: str, parts: Parts, graph: _Graph) -> None:
    """Record what a layer with per-input-channel weights reads (a shared layer must read the same channels)."""
    seen = graph.inputs.setdefault(name, parts)
    if seen != parts:
        if [len(g) for g, _ in seen] == [len(g) for g, _ in parts]:
            for (a, _), (b, _) in zip(seen, parts, strict=True):
                for x, y in zip(a, b, strict=True):
                    graph.union(x, y)
        else:
            graph.block(seen)
            graph.block(parts)


def _strongest(model: Any, graph: _Graph, root: int, sparsity: float, norm: str) -> np.ndarray:
    """Indices (ascending) of the channels of group ``root`` to keep: the largest filter norms, summed over its producers."""
    size = graph.sizes[root]
    score = np.zeros(size)
    for name, group in graph.producers.items():
        if graph.find(group) != root:
            continue
        kernel = model.get_layer(name).get_weights()[1 if "Separable" in type(model.get_layer(name)).__name__ else 0]
        flat = np.abs(kernel.reshape(-1, kernel.shape[-1]))
        filters = flat.sum(axis=0) if norm == "l1" else np.sqrt((flat**2).sum(axis=0))
        score += filters / max(float(filters.mean()), 1e-12)
    count = max(1, int(round((1.0 - sparsity) * size)))
    return np.sort(np.argsort(-score, kind="stable")[:count])


def _indices(parts: Parts, graph: _Graph, keep: dict[int, np.ndarray]) -> np.ndarray:
    """Which positions of a tensor's last axis survive, given the kept channels of every group."""
    chunks, offset = [], 0
    for groups, spatial in parts:
        width = sum(graph.sizes[g] for g in groups)
        kept, start = [], 0
        for group in groups:
            kept.append(start + keep.get(graph.find(group), np.arange(graph.sizes[group])))
            start += graph.sizes[group]
        channels = np.concatenate(kept) if kept else np.arange(0)
        chunks.append(offset + (np.arange(spatial)[:, None] * width + channels[None, :]).reshape(-1))
        offset += width * spatial
    return np.concatenate(chunks)


def _rebuild(model: Any, graph: _Graph, keep: dict[int, np.ndarray]) -> Any:
    import tf_keras

    def out_index(name: str) -> np.ndarray | None:
        group = graph.producers.get(name)
        return None if group is None else keep.get(graph.find(group))

    def narrower(layer: Any) -> Any:
        config = layer.get_config()
        kept = out_index(layer.name)
        if kept is not None:
            config["filters" if "filters" in config else "units"] = len(kept)
        return type(layer).from_config(config)

    pruned = tf_keras.models.clone_model(model, clone_function=narrower)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kept_in = _indices(graph.inputs[layer.name], graph, keep) if layer.name in graph.inputs else None
        pruned.get_layer(layer.name).set_weights(_slice(type(layer).__name__, weights, kept_in, out_index(layer.name)))
    return pruned


def _slice(kind: str, weights: list[np.ndarray], kept_in: np.ndarray | None, kept_out: np.ndarray | None) -> list[np.ndarray]:
    """A layer's weights cut to the kept input channels (axis -2 of kernels) and output channels (last axis)."""
    if kind == "BatchNormalization" or kind in _DEPTHWISE:
        return [np.take(w, kept_in, axis=-2 if w.ndim > 1 else 0) if kept_in is not None else w for w in weights]
    result = []
    for position, w in enumerate(weights):
        if w.ndim > 1 and kept_in is not None:
            w = np.take(w, kept_in, axis=-2)
        depthwise_part = kind.startswith("Separable") and position == 0
        if kept_out is not None and not depthwise_part:
            w = np.take(w, kept_out, axis=-1)
        result.append(w)
    return result
