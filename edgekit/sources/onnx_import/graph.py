"""The ONNX side of the importer: static input shapes, shape inference, node views and support checks.

Only ``onnx`` is needed here (no torch), so ``check_support`` refuses an unconvertible model in well
under a second.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, first_line
from edgekit.sources.onnx_import.registry import NodeView, Refusal, refusal_error, refusal_of

_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class InputInfo:
    """One graph input the imported module takes: name, static shape, numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def opset_of(model: Any) -> int:
    """The model's default-domain (ai.onnx) opset version."""
    versions = [entry.version for entry in model.opset_import if entry.domain in _DEFAULT_DOMAINS]
    return int(versions[0]) if versions else 1


def view_of(node: Any, opset: int, index: int = 0) -> NodeView:
    """A node's attributes as Python values (tensors as numpy arrays, strings decoded, subgraphs kept)."""
    from onnx import AttributeProto, helper, numpy_helper

    attrs: dict[str, Any] = {}
    subgraphs: dict[str, Any] = {}
    for attribute in node.attribute:
        if attribute.type == AttributeProto.GRAPH:
            subgraphs[attribute.name] = attribute.g
            attrs[attribute.name] = attribute.g
            continue
        if attribute.type == AttributeProto.TENSOR:
            attrs[attribute.name] = numpy_helper.to_array(attribute.t)
            continue
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [item.decode("utf-8", "replace") for item in value]
        attrs[attribute.name] = value
    return NodeView(op_type=node.op_type, name=node.name or f"{node.op_type}_{index}", attrs=attrs, opset=opset,
                    inputs=list(node.input), outputs=list(node.output), subgraphs=subgraphs)


def walk(graph: Any, opset: int) -> Iterator[tuple[Any, NodeView]]:
    """Every node of ``graph`` and of its subgraphs (If branches, loop bodies), with its view."""
    for index, node in enumerate(graph.node):
        view = view_of(node, opset, index)
        yield node, view
        for sub in view.subgraphs.values():
            yield from walk(sub, opset)


def refusals(model: Any) -> list[Refusal]:
    """Every node the importer refuses from its op type, domain, opset and attributes alone."""
    from edgekit.sources.onnx_import.ops import load_handlers

    load_handlers()
    opset = opset_of(model)
    found = []
    for node, view in walk(model.graph, opset):
        if node.domain not in _DEFAULT_DOMAINS:
            found.append(Refusal(view.name, view.op_type, opset, f"ops of the domain '{node.domain}' are not supported"))
            continue
        refusal = refusal_of(view)
        if refusal is not None:
            found.append(refusal)
    return found


def check_support(model: Any) -> None:
    """Raise ``UnsupportedOnnxError`` naming every node the importer refuses (before any conversion work)."""
    found = refusals(model)
    if found:
        raise refusal_error(found)


def graph_inputs(model: Any, static_shapes: Mapping[str, Sequence[int]]) -> list[InputInfo]:
    """The model's real inputs (initializers excluded) with static shapes: ``static_shapes`` first, then the file's."""
    from onnx.helper import tensor_dtype_to_np_dtype

    initializers = {init.name for init in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        declared = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]
        shape = tuple(static_shapes.get(value.name, declared))
        if None in shape or len(shape) != len(declared):
            raise ConversionError(
                f"ONNX input '{value.name}' has shape {declared}: the importer needs every dimension fixed",
                f"give input_shapes={{'{value.name}': [...]}} / --input-shape {value.name}=... (a rank-{len(declared)} shape)",
            )
        inputs.append(InputInfo(value.name, tuple(int(d) for d in shape), np.dtype(tensor_dtype_to_np_dtype(tensor.elem_type))))
    return inputs


def with_static_inputs(model: Any, inputs: list[InputInfo]) -> Any:
    """A copy of ``model`` whose inputs carry the static shapes, with shapes inferred (``data_prop=True``)."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    shapes = {info.name: info.shape for info in inputs}
    for value in fixed.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name]):
                dim.Clear()
                dim.dim_value = int(size)
    try:
        return onnx.shape_inference.infer_shapes(fixed, strict_mode=False, data_prop=True)
    except Exception as exc:  # InferenceError on an inconsistent graph
        raise ConversionError(
            f"ONNX shape inference failed at the fixed input shapes: {first_line(exc, 300)}",
            "check the input_shapes given; they must be shapes the model accepts",
        ) from exc


def inferred_shapes(model: Any) -> dict[str, tuple[int | None, ...]]:
    """The shapes ONNX shape inference found for graph values (None for unknown dimensions)."""
    graph = model.graph
    shapes = {}
    for value in (*graph.value_info, *graph.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                                       for d in tensor.shape.dim)
    return shapes
