"""Fold ONNX inputs fixed to constants (``input_values={"sr": 16000}``) into the graph.

The input becomes an initializer; then every node that depends on a fixed value and has only constant
inputs is evaluated once with ONNX's reference evaluator and replaced by its result, and an ``If``
whose condition became constant is replaced by the nodes of the branch it takes (which are folded in
turn). What is left of the graph no longer has the input, and control flow that only depended on it
is gone: OpenVINO's ONNX frontend converts it and int8 quantizes the weights the branch held.
Folding is only applied to what depends on a fixed value: weights and the rest of the graph are left
as they are. When a control-flow node still depends on a fixed value after folding, :func:`fold_inputs`
raises :class:`ConversionError` naming that node.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, InvalidOptionError, first_line

_CONTROL_FLOW = {"If", "Loop", "Scan"}
_NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
_MAX_FOLDED_ELEMENTS = 1 << 22
_MAX_PASSES = 8
_SMALL = 4096  # elements: shape computations, never weights


def fold_inputs(model: Any, values: Mapping[str, Any],
                static_shapes: Mapping[str, tuple[int, ...]] | None = None) -> tuple[Any, list[str]]:
    """A copy of ``model`` with each input of ``values`` folded in, and notes of what was folded.

    ``static_shapes`` (input name -> shape) fixes the other inputs' dynamic dimensions first, so that
    ``Shape`` nodes of tensors whose shape is then static are folded too.
    """
    import onnx

    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    fixed = _fix_inputs(graph, values, static_shapes or {})
    notes = [f"input '{name}' fixed to {_show(array)} and folded into the graph" for name, array in fixed.items()]
    constants = _Constants(dict(fixed), {init.name: init for init in graph.initializer})
    tainted = set(fixed)
    total = {"folded": 0, "inlined": 0}
    for _ in range(_MAX_PASSES):
        shapes = _known_shapes(folded)
        nodes, counts = _fold_nodes(list(graph.node), constants, _opsets(folded), tainted, shapes)
        graph.initializer.extend(counts["weights"])
        _replace_nodes(graph, nodes, constants)
        _prune(graph)
        total = {key: total[key] + counts[key] for key in total}
        if not counts["folded"] and not counts["inlined"]:
            break
    _check_unblocked(graph, tainted, set(fixed))
    if total["folded"] or total["inlined"]:
        notes.append(f"{total['folded']} node(s) computed once, {total['inlined']} If branch(es) inlined")
    return _inferred(folded), notes


def _fix_inputs(graph: Any, values: Mapping[str, Any], static_shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Move each fixed input into the initializers; give the others their static dimensions."""
    import onnx

    initializers = {init.name for init in graph.initializer}
    inputs = {value.name: value for value in graph.input if value.name not in initializers}
    fixed: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if name not in inputs:
            raise InvalidOptionError(f"input_values names '{name}', which is not an input of the model",
                                     f"the model's inputs are: {', '.join(inputs)}")
        fixed[name] = _as_input_array(value, inputs[name], name)
        graph.input.remove(inputs[name])
        graph.initializer.append(onnx.numpy_helper.from_array(fixed[name], name))
    for name, shape in static_shapes.items():
        if name in inputs and name not in fixed:
            for dim, size in zip(inputs[name].type.tensor_type.shape.dim, shape):
                if not dim.HasField("dim_value") or dim.dim_value <= 0:
                    dim.dim_value = int(size)
    return fixed


def _known_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Fully static shapes of the graph's values, from ONNX shape inference (empty when it fails)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # a graph ONNX cannot infer: Shape nodes are then left alone
        return {}
    shapes = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in tensor_type.shape.dim):
            shapes[info.name] = tuple(d.dim_value for d in tensor_type.shape.dim)
    return shapes


def _as_input_array(value: Any, info: Any, name: str) -> np.ndarray:
    from onnx import helper

    tensor_type = info.type.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
    array = np.asarray(value, dtype=dtype)
    rank = len(tensor_type.shape.dim)
    if array.ndim != rank and array.size == 1:
        array = array.reshape((1,) * rank)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if len(dims) != array.ndim or any(d is not None and d != s for d, s in zip(dims, array.shape)):
        raise InvalidOptionError(f"input_values['{name}'] has shape {list(array.shape)}, the input takes {dims}",
                                 "give a value of the input's shape (a number for a scalar input)")
    return array


def _show(array: np.ndarray) -> str:
    return str(array.reshape(-1)[0].item()) if array.size == 1 else f"an array of shape {list(array.shape)}"


class _Constants(dict):
    """Values known once: the fixed inputs and what was folded, plus the initializers read on demand."""

    def __init__(self, values: dict[str, np.ndarray], initializers: dict[str, Any]) -> None:
        super().__init__(values)
        self.initializers = initializers

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self.initializers

    def __missing__(self, name: str) -> np.ndarray:
        import onnx

        value = onnx.numpy_helper.to_array(self.initializers[name])
        self[name] = value
        return value


def _opsets(model: Any) -> list[Any]:
    return list(model.opset_import)


def _fold_nodes(nodes: list[Any], constants: _Constants, opsets: list[Any], tainted: set[str],
                shapes: dict[str, tuple[int, ...]]) -> tuple[list[Any], dict[str, Any]]:
    """The nodes left after folding (in order); ``constants`` and ``tainted`` are updated in place."""
    counts: dict[str, Any] = {"folded": 0, "inlined": 0, "weights": []}
    kept: list[Any] = []
    queue = list(nodes)
    while queue:
        node = queue.pop(0)
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" and node.output[0] not in constants:
            constants.update(_evaluate(node, constants, opsets) or {})
        if node.op_type in ("Shape", "Size") and inputs and inputs[0] in shapes:
            constants[node.output[0]] = _shape_value(node, shapes[inputs[0]])
            tainted.add(node.output[0])
            counts["folded"] += 1
            continue
        depends = any(name in tainted for name in inputs) or _uses_tainted_subgraph(node, tainted)
        if not depends and not _small_constant_computation(node, inputs, constants):
            kept.append(node)
            continue
        if node.op_type == "If" and node.input[0] in constants:
            branch_nodes, branch_weights = _inline_branch(node, bool(constants[node.input[0]].reshape(-1)[0]))
            queue[:0] = branch_nodes
            constants.initializers.update({init.name: init for init in branch_weights})
            counts["weights"] += branch_weights
            counts["inlined"] += 1
            continue
        if (all(name in constants for name in inputs) and node.op_type not in _CONTROL_FLOW
                and node.op_type not in _NONDETERMINISTIC and node.domain in ("", "ai.onnx")):
            outputs = _evaluate(node, constants, opsets)
            if outputs is not None:
                constants.update(outputs)
                if depends:
                    tainted.update(outputs)
                counts["folded"] += 1
                continue
        if depends:
            tainted.update(name for name in node.output if name)
        kept.append(node)
    return kept, counts


def _small_constant_computation(node: Any, inputs: list[str], constants: _Constants) -> bool:
    """A shape computation on constants (every input known and small): computed once like a fixed value."""
    if not inputs or node.op_type in _CONTROL_FLOW or node.op_type == "Constant":
        return False
    return all(name in constants and constants[name].size <= _SMALL for name in inputs)


def _shape_value(node: Any, shape: tuple[int, ...]) -> np.ndarray:
    """What a ``Shape`` (with its start/end attributes) or ``Size`` node returns for a static shape."""
    if node.op_type == "Size":
        return np.array(int(np.prod(shape)), np.int64)
    attributes = {a.name: a.i for a in node.attribute}
    start, end = attributes.get("start", 0), attributes.get("end", len(shape))
    return np.array(shape[start:end], np.int64)


def _uses_tainted_subgraph(node: Any, tainted: set[str]) -> bool:
    """Whether a subgraph of ``node`` reads a fixed value from the outer scope."""
    for attribute in node.attribute:
        for graph in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
            for inner in graph.node:
                if any(name in tainted for name in inner.input) or _uses_tainted_subgraph(inner, tainted):
                    return True
    return False


def _inline_branch(node: Any, condition: bool) -> tuple[list[Any], list[Any]]:
    """The nodes and weights of the branch an ``If`` takes, its results renamed to the ``If``'s outputs."""
    from onnx import helper

    branch = next(a.g for a in node.attribute if a.name == ("then_branch" if condition else "else_branch"))
    nodes = list(branch.node)
    nodes += [helper.make_node("Identity", [inner.name], [outer], name=f"{node.name or 'If'}/{outer}")
              for inner, outer in zip(branch.output, node.output)]
    return nodes, list(branch.initializer)


def _evaluate(node: Any, constants: dict[str, np.ndarray], opsets: list[Any]) -> dict[str, np.ndarray] | None:
    """The outputs of one node on constant inputs, or None when the reference evaluator cannot run it."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    inputs = [name for name in node.input if name]
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(constants[n].dtype), constants[n].shape)
         for n in dict.fromkeys(inputs)],
        [helper.make_value_info(n, helper.TypeProto()) for n in node.output if n],
    )
    try:
        model = helper.make_model(graph, opset_imports=opsets)
        results = ReferenceEvaluator(model).run(None, {n: constants[n] for n in inputs})
    except Exception:  # an op the reference evaluator lacks: the node stays in the graph
        return None
    outputs = dict(zip([n for n in node.output if n], (np.asarray(r) for r in results)))
    if sum(a.size for a in outputs.values()) > _MAX_FOLDED_ELEMENTS:
        return None
    return outputs


def _replace_nodes(graph: Any, nodes: list[Any], constants: dict[str, np.ndarray]) -> None:
    """Put ``nodes`` in the graph with every folded value it still reads as an initializer."""
    import onnx

    del graph.node[:]
    graph.node.extend(nodes)
    present = {init.name for init in graph.initializer}
    produced = {name for node in nodes for name in node.output}
    needed = {name for node in nodes for name in _reads(node)} | {out.name for out in graph.output}
    for name in sorted(needed - present - produced):
        if name in constants:
            graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(constants[name]), name))


def _check_unblocked(graph: Any, tainted: set[str], fixed: set[str]) -> None:
    """ConversionError naming the first control-flow node that still depends on a fixed value."""
    for node in graph.node:
        if node.op_type in _CONTROL_FLOW and (any(n in tainted for n in node.input if n)
                                              or _uses_tainted_subgraph(node, tainted)):
            raise ConversionError(
                f"input_values cannot fold {node.op_type} node '{node.name or node.output[0]}': it depends on "
                f"{', '.join(sorted(fixed))} (or a fixed shape) through a value edgekit cannot compute once",
                "fix the input in the exporting code instead (a Python constant), or give --input-shape for every "
                "dynamic input so that shape computations fold too",
            )


def _reads(node: Any) -> set[str]:
    """Every value ``node`` reads, its subgraphs' outer-scope reads included."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        for graph in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
            for inner in graph.node:
                names |= _reads(inner)
    return names


def _prune(graph: Any) -> None:
    """Drop nodes and initializers no graph output depends on."""
    needed = {out.name for out in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed |= _reads(node)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    unused = [init for init in graph.initializer if init.name not in needed]
    for init in unused:
        graph.initializer.remove(init)
    stale = [info for info in graph.value_info if info.name not in needed]
    for info in stale:
        graph.value_info.remove(info)


def _inferred(model: Any) -> Any:
    import onnx

    try:
        onnx.checker.check_model(model)
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises ValidationError / InferenceError
        raise ConversionError(f"the graph with its fixed inputs folded is not valid ONNX: {first_line(exc)}",
                              "report this model; meanwhile leave the input as an input") from exc
