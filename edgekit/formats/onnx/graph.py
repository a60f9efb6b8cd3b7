"""What an .onnx file holds, read with ``onnx`` (never its external data) without running it."""
from __future__ import annotations

from collections import Counter
from math import prod
from pathlib import Path

from edgekit.compat.report import OpInfo
from edgekit.errors import ModelFileError
from edgekit.specs import TensorSpec


def _load(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable ONNX model: {type(exc).__name__}", "give a .onnx file") from None


def companions(path: Path) -> list[Path]:
    """The external-data files of the model, each checked to stay beside it (none without ``onnx``)."""
    from edgekit.dependencies import is_installed

    if not is_installed("onnx"):  # the runtime checks locations itself (ONNX Runtime, OpenVINO)
        return []
    from edgekit.sources.onnx import external_data_files

    files = list(external_data_files(Path(path)))
    nested = [f for f in files if f.parent != Path(path).parent]
    if nested:
        raise ModelFileError(f"{Path(path).name} keeps external data in a sub-folder ({nested[0].name})",
                             "save the model with its external data beside it (onnx.save_model(..., location='model.onnx.data'))")
    return files


def list_ops(path: Path) -> list[OpInfo]:
    """The graph's nodes in order, with shapes from shape inference."""
    from edgekit.compat.source_ops import onnx_graph_ops

    return onnx_graph_ops(_load(path), lambda op_type: {"onnx": (op_type,)})


def read_inputs(path: Path) -> tuple[TensorSpec, ...]:
    """The graph inputs that are not initializers."""
    import onnx

    from edgekit.compat.source_ops import onnx_shape

    graph = _load(path).graph
    weights = {t.name for t in graph.initializer}
    return tuple(TensorSpec(name=vi.name, shape=onnx_shape(vi) or (),
                            dtype=str(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)))
                 for vi in graph.input if vi.name not in weights)


def stored_precision(path: Path) -> str:
    """'int8' (int8 weights or QuantizeLinear nodes), 'fp16' or 'fp32'."""
    import onnx

    graph = _load(path).graph
    kinds = {t.data_type for t in graph.initializer} | {n.op_type for n in graph.node}
    if kinds & {onnx.TensorProto.INT8, onnx.TensorProto.UINT8, "QuantizeLinear"}:
        return "int8"
    return "fp16" if onnx.TensorProto.FLOAT16 in kinds else "fp32"


def weight_counts(path: Path) -> Counter:
    """Weight parameters per stored dtype: initializers and tensor attributes, in subgraphs too (sizes from dims)."""
    import onnx
    from onnx import helper

    counts: Counter = Counter()

    def add(tensor) -> None:
        size = prod(tensor.dims)
        if size > 1:
            counts[helper.tensor_dtype_to_np_dtype(tensor.data_type).name] += size

    def walk(graph) -> None:
        for init in graph.initializer:
            add(init)
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    add(attr.t)
                elif attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for sub in attr.graphs:
                        walk(sub)

    walk(_load(path).graph)
    return counts
