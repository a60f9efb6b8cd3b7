"""ONNX limits read from the graph alone (never its external data): size, nesting, chains, external-data bytes."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.dependencies import is_installed
from edgekit.errors import EdgekitError, ModelFileError
from edgekit.limits import WEIGHT_COPIES, GraphLimits, check_regular_file, human_bytes

#: a data file storing less than this fraction of the bytes its tensors declare is refused as sparse ...
_SPARSE_FRACTION = 0.5
#: ... when the bytes missing from the disk are more than this
_SPARSE_SLACK = 64 << 20


def check_onnx_limits(path: Path, budget: int, limits: GraphLimits) -> int:
    """Refuse ``path`` when its graph breaks ``limits`` or its external data is sparse or over ``budget``
    (the bytes left for external data); return the external data's size in bytes."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - an unparsable file is reported by the loader with its own message
        return 0
    check_graph(model, path, limits)
    total = check_sparse_data(model, path)
    if total * WEIGHT_COPIES > budget:
        raise ModelFileError(
            f"{path} declares {human_bytes(total)} of external data; converting it needs about "
            f"{human_bytes(total * WEIGHT_COPIES)}, over what the memory budget leaves ({human_bytes(max(budget, 0))})",
            "raise --memory-budget / memory_budget= if the machine has the memory",
        )
    return total


def check_graph(model: Any, path: Path, limits: GraphLimits) -> None:
    """Refuse a graph whose node count, subgraph nesting or longest chain breaks ``limits``."""
    nodes = 0
    for graph, level in _graphs(model):
        if level > limits.max_nesting:
            raise _refuse(path, f"subgraphs (If/Loop/Scan bodies) nested more than {limits.max_nesting} deep", "max_nesting")
        nodes += len(graph.node)
        if nodes > limits.max_nodes:
            raise _refuse(path, f"more than {limits.max_nodes} nodes (graph and subgraphs)", "max_nodes")
        chain = _longest_chain(graph)
        if chain > limits.max_chain:
            raise _refuse(path, f"a chain of {chain} nodes one after another (the limit is {limits.max_chain})", "max_chain")


def check_sparse_data(model: Any, path: Path) -> int:
    """Refuse external-data files that store much less than their tensors declare (sparse files, read as
    gigabytes of zeros); return the bytes declared in external data. Reads ``stat`` only."""
    declared: dict[str, int] = {}
    for graph, _ in _graphs(model):
        for tensor in _tensors(graph):
            if tensor.data_location != 1:  # TensorProto.EXTERNAL
                continue
            info = {entry.key: entry.value for entry in tensor.external_data}
            try:
                length = int(info["length"]) if "length" in info else _byte_size(tensor)
            except ValueError:
                continue  # the loader refuses a non-numeric length
            location = info.get("location", "")
            declared[location] = declared.get(location, 0) + length
    for location, length in declared.items():
        _check_sparse(path, location, length)
    return sum(declared.values())


def _graphs(model: Any) -> Iterator[tuple[Any, int]]:
    """Every graph of the model with its nesting level: the main graph and functions, then subgraphs."""
    stack: list[tuple[Any, int]] = [(model.graph, 0), *((function, 1) for function in model.functions)]
    while stack:
        graph, level = stack.pop()
        yield graph, level
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    stack.append((attribute.g, level + 1))
                stack += [(g, level + 1) for g in attribute.graphs]


def _longest_chain(graph: Any) -> int:
    depth: dict[str, int] = {}
    longest = 0
    for node in graph.node:  # ONNX graphs are topologically sorted
        length = 1 + max((depth.get(name, 0) for name in node.input if name), default=0)
        for name in node.output:
            depth[name] = length
        longest = max(longest, length)
    return longest


def _tensors(graph: Any) -> Iterator[Any]:
    yield from getattr(graph, "initializer", ())
    for sparse in getattr(graph, "sparse_initializer", ()):
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors


def _check_sparse(path: Path, location: str, declared: int) -> None:
    file = path.parent / location
    try:
        status = file.stat()
    except (OSError, ValueError):
        return  # missing or unsafe locations are refused by the loader, which checks every one
    stored = getattr(status, "st_blocks", None)
    if stored is None or not file.is_file():
        return
    stored *= 512
    if stored < declared * _SPARSE_FRACTION and declared - stored > _SPARSE_SLACK:
        raise ModelFileError(
            f"{path}: its external data file '{location}' is a sparse file: its tensors declare {human_bytes(declared)} "
            f"but only {human_bytes(stored)} are stored on disk (the rest are holes); refused before reading it",
            "this is not a real weights file: export or copy the model and its .data file again",
        )


def _byte_size(tensor: Any) -> int:
    import numpy as np
    from onnx.helper import tensor_dtype_to_np_dtype

    try:
        itemsize = np.dtype(tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError):
        return 0
    return int(np.prod(tensor.dims, dtype=np.int64)) * itemsize


def _refuse(path: Path, what: str, key: str) -> ModelFileError:
    return ModelFileError(
        f"{path} is refused as a pathological graph: it has {what}",
        f"real models stay far below this; if this one is real, raise the limit with --graph-limit {key}=N",
    )


def check_model_limits(model: Any, budget: int, graph: GraphLimits) -> int | None:
    """Check a model file against the budget (and an ONNX graph against ``graph``); its size in bytes, or None
    for an in-memory model."""
    if not isinstance(model, (str, Path)):
        return None
    path = Path(model)
    if not path.exists():
        return None  # the source's sniffer names the missing file
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        check_regular_file(path, "a model")
        size = path.stat().st_size
    if size * WEIGHT_COPIES > budget:
        raise ModelFileError(
            f"{path} holds {human_bytes(size)}; converting it needs about {human_bytes(size * WEIGHT_COPIES)}, over the "
            f"memory budget of {human_bytes(budget)}",
            "raise --memory-budget / memory_budget= if the machine has the memory",
        )
    if path.is_file() and _is_onnx(path) and is_installed("onnx"):  # else the route names it
        size += check_onnx_limits(path, budget - size * WEIGHT_COPIES, graph)
    return size


def _is_onnx(path: Path) -> bool:
    from edgekit.sources.sniff import sniff

    try:
        return sniff(path).framework == "onnx"
    except EdgekitError:
        return False
