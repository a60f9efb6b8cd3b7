"""Constant folding at import time: shape-like values become Python ints, folded ``If`` nodes are inlined.

Folding itself happens in ``Builder.call`` (a call whose arguments are all constant runs at once); with
static input shapes ``Shape``/``Size`` are constants, so the shape arithmetic after them (Gather, Concat,
ConstantOfShape, Range, Cast, Unsqueeze, ...) folds too. The helpers here read folded values as Python
numbers for the handlers, and refuse by name a value that is still computed at run time.
"""
from __future__ import annotations

from typing import Any

from edgekit.sources.onnx_import.build import Dyn
from edgekit.sources.onnx_import.registry import NodeView, refuse


def constant(node: NodeView, value: Any, what: str) -> Any:
    """``value`` as a folded torch tensor, or a refusal naming ``what`` when it depends on the inputs."""
    if isinstance(value, Dyn):
        raise refuse(node, f"{what} is computed at run time from the model's inputs, and the importer needs it "
                           "constant (it folds shapes only at static input shapes)")
    return value


def ints(node: NodeView, value: Any, what: str) -> list[int]:
    """A folded 0-D/1-D integer input as a list of Python ints (e.g. Reshape's shape, Slice's starts)."""
    return [int(v) for v in constant(node, value, what).reshape(-1).tolist()]


def floats(node: NodeView, value: Any, what: str) -> list[float]:
    return [float(v) for v in constant(node, value, what).reshape(-1).tolist()]


def scalar(node: NodeView, value: Any, what: str) -> float | int | bool:
    items = constant(node, value, what).reshape(-1).tolist()
    if len(items) != 1:
        raise refuse(node, f"{what} must hold one value, it holds {len(items)}")
    return items[0]


def inline_if(b: Any, node: NodeView, condition: Any) -> tuple[Any, ...]:
    """The outputs of the branch an ``If`` takes, when its condition folds to a constant."""
    taken = "then_branch" if bool(scalar(node, condition, "the If condition")) else "else_branch"
    outputs = b.interpret(node.subgraphs[taken])
    return tuple(outputs)
