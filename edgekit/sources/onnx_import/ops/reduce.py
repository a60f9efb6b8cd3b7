"""Reductions: ReduceMean/Sum/Max/Min/Prod/L2/SumSquare with attribute axes (older opsets) or input axes."""
from __future__ import annotations

from typing import Any

from edgekit.sources.onnx_import._torch import torch
from edgekit.sources.onnx_import.fold import ints
from edgekit.sources.onnx_import.ops._util import axis, rank
from edgekit.sources.onnx_import.registry import op

# op -> (torch reduction name, first opset that takes axes as an input)
_REDUCTIONS = {"ReduceMean": ("mean", 18), "ReduceSum": ("sum", 13), "ReduceMax": ("amax", 18),
               "ReduceMin": ("amin", 18), "ReduceProd": ("prod", 18), "ReduceL2": ("l2", 18),
               "ReduceSumSquare": ("sumsquare", 18)}


def _reduce(x: Any, kind: str, dims: tuple[int, ...], keep: bool) -> Any:
    if kind == "prod":
        for dim in sorted(dims, reverse=True):
            x = torch.prod(x, dim, keepdim=keep)
        return x
    if kind == "l2":
        return torch.sqrt(torch.sum(x * x, dim=dims, keepdim=keep))
    if kind == "sumsquare":
        return torch.sum(x * x, dim=dims, keepdim=keep)
    return getattr(torch, kind)(x, dim=dims, keepdim=keep)


def _reduction(name: str) -> None:
    kind, input_axes_since = _REDUCTIONS[name]

    @op(name, since=1, attrs=("axes", "keepdims", "noop_with_empty_axes"))
    def handler(b: Any, node: Any, x: Any, axes: Any = None) -> Any:
        if node.opset >= input_axes_since:
            chosen = ints(node, axes, f"{name}'s axes") if axes is not None else []
        else:
            chosen = list(node.attrs.get("axes", []))
        if not chosen:
            if node.attrs.get("noop_with_empty_axes", 0):
                return x
            chosen = list(range(rank(x)))
        dims = tuple(sorted({axis(a, rank(x)) for a in chosen}))
        return b.call(_reduce, x, kind, dims, bool(node.attrs.get("keepdims", 1)))


for _name in _REDUCTIONS:
    _reduction(_name)
