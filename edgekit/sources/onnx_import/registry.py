"""The importer's op table: one handler per ONNX op type with the opsets and attributes it supports.

Pure data and checks: importing this module (and ``check_support``) does not import torch, so a model
the importer cannot convert is refused by name before any framework loads.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ConversionError

#: the highest default-domain opset the table has been checked against (ONNX 1.23 ships opset 24)
MAX_OPSET = 24


class UnsupportedOnnxError(ConversionError):
    """An ONNX node the importer does not convert (op, opset, attribute value or a run-time shape)."""


@dataclass(frozen=True)
class OpSpec:
    """What one handler supports: opsets ``since``..``until`` (inclusive) and attribute names.

    ``check`` returns why a node with supported attribute names still cannot be converted (an attribute
    value), or None.
    """

    op_type: str
    handler: Callable[..., Any]
    since: int = 1
    until: int = MAX_OPSET
    attrs: frozenset[str] = frozenset()
    check: Callable[[dict[str, Any], int], str | None] | None = None


@dataclass(frozen=True)
class Refusal:
    """One node the importer refuses, and why."""

    node: str
    op_type: str
    opset: int
    reason: str

    @property
    def message(self) -> str:
        return f"{self.op_type} node '{self.node}' (opset {self.opset}): {self.reason}"


OPS: dict[str, OpSpec] = {}


def op(op_type: str, *, since: int = 1, until: int = MAX_OPSET, attrs: tuple[str, ...] = (),
       check: Callable[[dict[str, Any], int], str | None] | None = None) -> Callable:
    """Register the decorated function as the handler of ``op_type``; a type registered twice is an error."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        if op_type in OPS:
            raise ValueError(f"ONNX op {op_type} is registered twice")
        OPS[op_type] = OpSpec(op_type, handler, since, until, frozenset(attrs), check)
        return handler

    return register


@dataclass
class NodeView:
    """A node's op type, name, attributes (as Python values) and the opset it is read at."""

    op_type: str
    name: str
    attrs: dict[str, Any]
    opset: int
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    subgraphs: dict[str, Any] = field(default_factory=dict)


def refusal_of(view: NodeView) -> Refusal | None:
    """Why the importer cannot convert ``view`` judged from its op, opset and attributes alone, or None."""
    spec = OPS.get(view.op_type)
    if spec is None:
        return Refusal(view.name, view.op_type, view.opset, f"the ONNX op {view.op_type} is not supported by the importer")
    if not spec.since <= view.opset <= spec.until:
        return Refusal(view.name, view.op_type, view.opset,
                       f"opset {view.opset} is outside the supported range {spec.since}-{spec.until}")
    unknown = sorted(set(view.attrs) - spec.attrs)
    if unknown:
        return Refusal(view.name, view.op_type, view.opset, f"attribute(s) {', '.join(unknown)} not supported")
    reason = spec.check(view.attrs, view.opset) if spec.check else None
    return Refusal(view.name, view.op_type, view.opset, reason) if reason else None


def refuse(view: NodeView, reason: str) -> UnsupportedOnnxError:
    """The error for a node found unconvertible while importing (e.g. a shape computed at run time)."""
    return refusal_error([Refusal(view.name, view.op_type, view.opset, reason)])


def refusal_error(refusals: list[Refusal]) -> UnsupportedOnnxError:
    listed = "; ".join(r.message for r in refusals[:5])
    more = f" (and {len(refusals) - 5} more)" if len(refusals) > 5 else ""
    types = sorted({r.op_type for r in refusals})
    return UnsupportedOnnxError(
        f"the ONNX->TFLite importer cannot convert {len(refusals)} node(s): {listed}{more}",
        f"replace or remove the {', '.join(types)} node(s), export with another opset, or build this model for "
        "onnx or openvino instead (they take every ONNX op ONNX Runtime / OpenVINO run)",
    )
