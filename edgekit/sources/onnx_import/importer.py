"""``import_onnx``: an ONNX ModelProto at static input shapes to a ``torch.fx.GraphModule``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgekit.errors import ConversionError
from edgekit.sources.onnx_import.build import Builder, Dyn
from edgekit.sources.onnx_import.graph import (
    InputInfo,
    check_support,
    graph_inputs,
    inferred_shapes,
    opset_of,
    view_of,
    with_static_inputs,
)
from edgekit.sources.onnx_import.registry import OPS, NodeView, refuse


@dataclass
class ImportedModel:
    """The GraphModule (positional inputs in ONNX order, a tuple of outputs) and its I/O."""

    module: Any
    inputs: list[InputInfo]
    output_names: list[str]
    opset: int

    def example_args(self) -> tuple[Any, ...]:
        """Zero tensors of the static input shapes (float inputs: standard normal), for torch.export."""
        import torch

        generator = torch.Generator().manual_seed(0)
        args = []
        for info in self.inputs:
            dtype = getattr(torch, info.dtype.name)
            if dtype.is_floating_point:
                args.append(torch.randn(info.shape, generator=generator).to(dtype))
            else:
                args.append(torch.zeros(info.shape, dtype=dtype))
        return tuple(args)


def import_onnx(model: Any, static_shapes: Mapping[str, Sequence[int]] | None = None) -> ImportedModel:
    """Import ``model`` (checked first: unsupported nodes are refused by name before any work)."""
    import torch

    from edgekit.sources.onnx_import.ops import bind_torch

    bind_torch()
    check_support(model)
    inputs = graph_inputs(model, static_shapes or {})
    model = with_static_inputs(model, inputs)
    opset = opset_of(model)
    builder = Builder()
    env: dict[str, Any] = {}
    for info in inputs:
        env[info.name] = builder.placeholder(info.name, info.shape, getattr(torch, info.dtype.name))
    _add_initializers(builder, model.graph, env)

    def interpret(graph: Any) -> list[Any]:
        _add_initializers(builder, graph, env)
        _run_nodes(builder, graph, env, opset)
        return [env[value.name] for value in graph.output]

    builder.interpret = interpret
    with torch.no_grad():
        outputs = interpret(model.graph)
        _check_shapes(model, outputs)
        module = builder.finish(outputs)
    return ImportedModel(module, inputs, [value.name for value in model.graph.output], opset)


def _add_initializers(builder: Builder, graph: Any, env: dict[str, Any]) -> None:
    import torch
    from onnx import numpy_helper

    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        tensor = torch.from_numpy(array.copy()) if array.dtype != object else None
        if tensor is None:
            raise ConversionError(f"initializer '{init.name}' holds strings", "the TFLite route converts numeric tensors only")
        builder.name_constant(tensor, init.name)
        env[init.name] = tensor


def _run_nodes(builder: Builder, graph: Any, env: dict[str, Any], opset: int) -> None:
    import torch

    for index, node in enumerate(graph.node):
        view = view_of(node, opset, index)
        args = []
        for name in node.input:
            if name and name not in env:
                raise refuse(view, f"input '{name}' is not produced by any earlier node")
            args.append(env[name] if name else None)
        result = OPS[view.op_type].handler(builder, view, *args)
        results = result if isinstance(result, tuple) else (result,)
        for position, name in enumerate(node.output):
            if not name:
                continue
            if position >= len(results) or results[position] is None:
                raise refuse(view, f"output {position} ('{name}') is not supported")
            env[name] = results[position]
            if isinstance(results[position], torch.Tensor):
                builder.name_constant(results[position], name)


def _check_shapes(model: Any, outputs: list[Any]) -> None:
    """The imported outputs must have the shapes ONNX shape inference found (a self-check of the handlers)."""
    inferred = inferred_shapes(model)
    for value, out in zip(model.graph.output, outputs):
        shape = out.shape if isinstance(out, Dyn) else tuple(out.shape)
        expected = inferred.get(value.name)
        if expected and None not in expected and tuple(expected) != tuple(shape):
            raise ConversionError(
                f"the imported graph gives output '{value.name}' shape {list(shape)}, ONNX shape inference says {list(expected)}",
                "this is an importer defect for this model; build it for onnx or openvino meanwhile",
            )


__all__ = ["ImportedModel", "NodeView", "import_onnx"]
