"""The FX graph builder: constants fold at once, everything else becomes a node with its static shape.

``Builder.call(fn, *args)`` runs ``fn`` eagerly when no argument depends on a graph input (constant
folding: shape arithmetic, weight transposes, ``If`` conditions ...) and otherwise appends a
``call_function`` node whose output shape and dtype come from running ``fn`` on meta tensors. Constant
tensors an emitted node uses become parameters (floating point) or buffers of the GraphModule, named
after their ONNX initializer.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgekit.sources.onnx_import._torch import torch


@dataclass(eq=False)
class Dyn:
    """A value computed at run time: an FX node and a meta tensor with its static shape and dtype."""

    node: Any
    meta: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.meta.shape)

    @property
    def dtype(self) -> Any:
        return self.meta.dtype

    @property
    def ndim(self) -> int:
        return self.meta.dim()


def is_dyn(value: Any) -> bool:
    return isinstance(value, Dyn)


def _any_dyn(tree: Any) -> bool:
    if isinstance(tree, Dyn):
        return True
    if isinstance(tree, (list, tuple)):
        return any(_any_dyn(item) for item in tree)
    if isinstance(tree, dict):
        return any(_any_dyn(item) for item in tree.values())
    return False


def _map(tree: Any, leaf: Callable[[Any], Any]) -> Any:
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(item, leaf) for item in tree)
    if isinstance(tree, dict):
        return {key: _map(item, leaf) for key, item in tree.items()}
    return leaf(tree)


class Builder:
    """Builds one ``torch.fx.GraphModule`` from an ONNX graph."""

    def __init__(self) -> None:
        self.graph = torch.fx.Graph()
        self.root = torch.nn.Module()
        self._nodes: dict[int, Any] = {}  # id(constant tensor) -> its get_attr node
        self._keep: list[Any] = []  # constants with a node, kept alive so their ids stay unique
        self._names: dict[int, str] = {}  # id(initializer tensor) -> its ONNX name
        self.interpret: Callable[[Any, dict[str, Any]], list[Any]] | None = None  # runs a subgraph (If)

    def placeholder(self, name: str, shape: tuple[int, ...], dtype: Any) -> Dyn:
        node = self.graph.placeholder(_identifier(name, set()))
        return Dyn(node, torch.empty(shape, dtype=dtype, device="meta"))

    def name_constant(self, tensor: Any, onnx_name: str) -> None:
        """Name a constant after its ONNX initializer or producing output (the first name given wins)."""
        if id(tensor) not in self._names:
            self._names[id(tensor)] = onnx_name
            self._keep.append(tensor)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``: computed now if every argument is constant, else an FX node (or a tuple of them)."""
        if not _any_dyn((args, kwargs)):
            return fn(*args, **kwargs)
        meta_args, meta_kwargs = _map((args, kwargs), _to_meta)
        meta = fn(*meta_args, **meta_kwargs)
        node_args, node_kwargs = _map((args, kwargs), self._node_of)
        node = self.graph.call_function(fn, tuple(node_args), dict(node_kwargs))
        if isinstance(meta, (tuple, list)):
            return tuple(Dyn(self.graph.call_function(operator.getitem, (node, i)), m) for i, m in enumerate(meta))
        return Dyn(node, meta)

    def _node_of(self, value: Any) -> Any:
        if isinstance(value, Dyn):
            return value.node
        if not isinstance(value, torch.Tensor):
            return value
        key = id(value)
        if key not in self._nodes:
            used = set(dict(self.root.named_parameters())) | set(dict(self.root.named_buffers()))
            name = _identifier(self._names.get(key, f"const_{len(self._nodes)}"), used)
            if value.is_floating_point():
                self.root.register_parameter(name, torch.nn.Parameter(value.contiguous(), requires_grad=False))
            else:
                self.root.register_buffer(name, value.contiguous())
            self._nodes[key] = self.graph.get_attr(name)
            self._keep.append(value)
        return self._nodes[key]

    def finish(self, outputs: list[Any]) -> Any:
        """The GraphModule returning ``outputs`` (a tuple), with unused constants dropped."""
        self.graph.output(tuple(self._node_of(value) for value in outputs))
        self.graph.eliminate_dead_code()
        module = torch.fx.GraphModule(self.root, self.graph)
        used = {node.target for node in module.graph.nodes if node.op == "get_attr"}
        for name in [n for n, _ in module.named_parameters() if n not in used]:
            delattr(module, name)
        for name in [n for n, _ in module.named_buffers() if n not in used]:
            delattr(module, name)
        module.graph.lint()
        module.recompile()
        return module.eval()


def _to_meta(value: Any) -> Any:
    if isinstance(value, Dyn):
        return value.meta
    if isinstance(value, torch.Tensor):
        return value.to("meta")
    return value


def _identifier(name: str, used: set[str]) -> str:
    base = re.sub(r"\W", "_", name).strip("_") or "value"
    if base[0].isdigit():
        base = "t_" + base
    candidate, index = base, 1
    while candidate in used or candidate in _RESERVED or hasattr(torch.nn.Module, candidate):
        candidate, index = f"{base}_{index}", index + 1
    return candidate


_RESERVED = {"training", "forward", "graph", "code", "eval", "train", "type", "to"}
