"""A strict walk of a torch.export program JSON against torch's own serialization schema.

``torch._export.serde.schema`` declares every part of a serialized ``ExportedProgram`` as dataclasses
and tagged unions. :func:`check_program` walks the parsed JSON against those declarations and refuses
what torch's own reader lets through: unknown keys (torch ignores them), a value of the wrong type,
a union with more than one tag. Along the way it collects what is not data:

- custom-class / opaque objects (``as_custom_obj``, ``custom_obj`` inputs, ``custom_obj_values``):
  torch would unpickle them;
- operator targets outside ``torch.ops`` (aten, prims, quantized_decomposed, higher_order), a
  fixed set of ``_operator`` / ``math`` / ``torch.sym_*`` functions: any other dotted name would be
  looked up in torch and *called* when the graph runs;
- shape expressions outside the grammar of :mod:`edgekit.sources.pt2_expr`.

``guards_code`` (Python source torch turns into a function when ``.module()`` is called) is never
used: :func:`drop_guards` empties it; the range constraints keep the same facts as data.
"""
from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Annotated, Any

from edgekit.sources.pt2_expr import ExpressionError, check_expression

_OP_NAMESPACES = frozenset({"aten", "prims", "quantized_decomposed", "higher_order"})
_PLAIN_FUNCTIONS = frozenset({
    "_operator.getitem", "_operator.add", "_operator.sub", "_operator.mul", "_operator.floordiv",
    "_operator.truediv", "_operator.mod", "_operator.neg", "_operator.pow", "_operator.eq", "_operator.ne",
    "_operator.lt", "_operator.le", "_operator.gt", "_operator.ge", "_operator.and_", "_operator.or_",
    "_operator.not_", "math.ceil", "math.floor", "math.sqrt", "math.trunc",
    "torch.sym_int", "torch.sym_float", "torch.sym_max", "torch.sym_min", "torch.sym_not", "torch.sym_ite",
    "torch.sym_sqrt", "torch.sym_sum", "torch._sym_sqrt",
})
_METADATA_KEYS = frozenset({"stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn", "custom"})
MAX_FINDINGS = 5


class Walk:
    """The findings of one walk: problems (each a short phrase) in the order they were met."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str, where: str) -> None:
        if len(self.problems) < MAX_FINDINGS and problem not in [p.split(" at ")[0] for p in self.problems]:
            self.problems.append(f"{problem} at {where or 'the top level'}")


def check_program(data: Any) -> list[str]:
    """Problems found walking ``data`` (a parsed ``models/<name>.json``) as an ``ExportedProgram``."""
    from torch._export.serde import schema

    walk = Walk()
    _walk(schema.ExportedProgram, data, "", walk, schema)
    return walk.problems


def check_payload_config(data: Any) -> list[str]:
    """Problems found walking a weights / constants config JSON as a ``PayloadConfig``."""
    from torch._export.serde import schema

    walk = Walk()
    _walk(schema.PayloadConfig, data, "", walk, schema)
    return walk.problems


def drop_guards(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without ``guards_code`` (Python source, never executed by edgekit)."""
    return {**data, "guards_code": []}


def _walk(cls: Any, data: Any, where: str, walk: Walk, schema: Any) -> None:  # noqa: C901 - one dispatch
    if typing.get_origin(cls) is Annotated:
        cls = typing.get_args(cls)[0]
    if isinstance(cls, str):
        cls = getattr(schema, cls)
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        if data is not None:
            _walk(options[0], data, where, walk, schema)
    elif origin is list:
        if not isinstance(data, list):
            walk.add(f"a {type(data).__name__} where a list belongs", where)
            return
        for i, item in enumerate(data):
            _walk(typing.get_args(cls)[0], item, f"{where}[{i}]", walk, schema)
    elif origin is dict:
        if not isinstance(data, dict):
            walk.add(f"a {type(data).__name__} where a mapping belongs", where)
            return
        for key, item in data.items():
            _walk(typing.get_args(cls)[1], item, f"{where}.{key}", walk, schema)
    elif isinstance(cls, type) and issubclass(cls, enum.IntEnum):
        if type(data) is not int or data not in {m.value for m in cls}:
            walk.add(f"{data!r:.40} where a {cls.__name__} code belongs", where)
    elif isinstance(cls, type) and issubclass(cls, schema._Union):
        _walk_union(cls, data, where, walk, schema)
    elif dataclasses.is_dataclass(cls):
        _walk_dataclass(cls, data, where, walk, schema)
    else:
        _walk_scalar(cls, data, where, walk)


def _walk_scalar(cls: Any, data: Any, where: str, walk: Walk) -> None:
    ok = {
        bool: type(data) is bool,
        int: type(data) is int,
        float: type(data) in (int, float) or data in ("Infinity", "-Infinity", "NaN"),
        str: isinstance(data, str),
    }.get(cls)
    if ok is None:
        walk.add(f"a field of unexpected type {cls!r:.40}", where)
    elif not ok:
        walk.add(f"a {type(data).__name__} where a {cls.__name__} belongs", where)


def _walk_union(cls: Any, data: Any, where: str, walk: Walk, schema: Any) -> None:
    hints = typing.get_type_hints(cls, globalns=vars(schema), include_extras=True)
    if not isinstance(data, dict) or len(data) != 1 or next(iter(data)) not in hints:
        walk.add(f"a malformed {cls.__name__} (one known tag expected)", where)
        return
    tag, value = next(iter(data.items()))
    here = f"{where}.{tag}"
    if tag in ("as_custom_obj", "custom_obj"):
        walk.add("a custom-class object (torch would unpickle it)", here)
        return
    if tag == "as_operator":
        _check_target(value, here, walk)
    _walk(hints[tag], value, here, walk, schema)


def _walk_dataclass(cls: Any, data: Any, where: str, walk: Walk, schema: Any) -> None:
    if not isinstance(data, dict):
        walk.add(f"a {type(data).__name__} where a {cls.__name__} belongs", where)
        return
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [key for key in data if key not in fields]
    if unknown:
        walk.add(f"unknown field(s) {', '.join(map(str, unknown[:3]))} in a {cls.__name__}", where)
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        walk.add(f"missing field(s) {', '.join(missing)} in a {cls.__name__}", where)
    hints = typing.get_type_hints(cls, globalns=vars(schema), include_extras=True)
    for name, value in data.items():
        if name in fields:
            _walk(hints[name], value, f"{where}.{name}" if where else name, walk, schema)
    _check_fields(cls.__name__, data, where, walk)


def _check_fields(name: str, data: dict[str, Any], where: str, walk: Walk) -> None:
    """The checks on what the values mean, for the dataclasses that carry more than data."""
    if name == "SymExpr" and isinstance(data.get("expr_str"), str):
        try:
            check_expression(data["expr_str"])
        except ExpressionError as exc:
            walk.add(str(exc), where)
    elif name == "Node":
        _check_target(data.get("target"), f"{where}.target", walk)
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and set(metadata) - _METADATA_KEYS:
            walk.add(f"unknown node metadata {sorted(set(metadata) - _METADATA_KEYS)[:3]}", where)
    elif name == "Graph" and data.get("custom_obj_values"):
        walk.add("custom-class object values (torch would unpickle them)", where)
    elif name == "ExportedProgram":
        verifiers = data.get("verifiers") or []
        if not isinstance(verifiers, list) or any(v not in ("", "ATEN", "TRAINING") for v in verifiers):
            walk.add(f"unknown verifier dialect(s) {verifiers!r:.60}", where)


def _check_target(target: Any, where: str, walk: Walk) -> None:
    if not isinstance(target, str):
        return
    if target in _PLAIN_FUNCTIONS:
        return
    parts = target.split(".")
    if len(parts) in (4, 5) and parts[:2] == ["torch", "ops"] and parts[2] in _OP_NAMESPACES \
            and all(p.isidentifier() and not p.startswith("__") for p in parts[3:]):
        return
    walk.add(f"the operator target {target!r:.80} (only torch.ops operators are data)", where)
