"""Reading a .pte without running it: the execution plan's instructions, inputs, and the stored weights.

The program flatbuffer is parsed with ExecuTorch's own deserializer (``exir._serialize``); each XNNPACK
delegate blob (``XH00`` header + an ``XN01`` flatbuffer) is read with the ``flatc`` that executorch ships
and ``backends/xnnpack/serialization/schema.fbs``, which gives the XNNPACK nodes and the stored datatype
and shape of every constant tensor (the weights live in the delegate, not in the program's constant buffer).
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgekit.compat.report import OpInfo
from edgekit.errors import ModelFileError, first_line
from edgekit.specs import TensorSpec

IO_METHOD = "edgekit_io"  # constant method the route writes: {"inputs": [names], "outputs": [names]}
XNNPACK = "XnnpackBackend"
# ExecuTorch ScalarType -> numpy dtype name (scalar_type.fbs)
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
                11: "bool", 15: "bfloat16"}
# XNNDatatype -> the stored dtype name weight counting uses
_XNN_TYPES = {"xnn_datatype_fp32": "float32", "xnn_datatype_fp16": "float16", "xnn_datatype_qint8": "int8",
              "xnn_datatype_quint8": "uint8", "xnn_datatype_qint32": "int32", "xnn_datatype_qcint8": "int8",
              "xnn_datatype_qcint32": "int32", "xnn_datatype_qcint4": "int4", "xnn_datatype_qbint4": "int4",
              "xnn_datatype_bf16": "bfloat16"}
_MAX_BYTES = 4 << 30


@dataclass(frozen=True)
class Delegate:
    """One delegated subgraph: its backend and, for XNNPACK, its node types and constant tensors."""

    backend: str
    nodes: tuple[str, ...] = ()
    constants: tuple[tuple[str, int], ...] = ()  # (stored dtype, element count) per constant tensor


@dataclass(frozen=True)
class ProgramInfo:
    instructions: tuple[tuple[str, str], ...]  # ("kernel", "aten::mean.out") or ("delegate", "XnnpackBackend")
    delegates: tuple[Delegate, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    constants: tuple[tuple[str, int], ...] = field(default=())  # non-delegated constant tensors


def read_program(path: Path) -> ProgramInfo:
    """The ``forward`` method of the .pte at ``path``, parsed (a corrupt file is a ``ModelFileError``)."""
    path = Path(path)
    stat = path.stat()
    return _read(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _read(path: str, size: int, mtime: int) -> ProgramInfo:
    from edgekit.quiet import quiet

    if size > _MAX_BYTES:
        raise ModelFileError(f"{Path(path).name} is {size} bytes: larger than edgekit reads ({_MAX_BYTES})", "")
    data = Path(path).read_bytes()
    _check_declared_size(data, Path(path).name)
    try:
        with quiet():
            from executorch.exir._serialize._program import deserialize_pte_binary

            program = deserialize_pte_binary(data).program
    except Exception as exc:  # the flatbuffer reader raises whatever a bad offset gives
        raise ModelFileError(f"{Path(path).name} is not a readable ExecuTorch program: {first_line(exc)}",
                             "convert the model again; the file is truncated or corrupt") from exc
    plans = {plan.name: plan for plan in program.execution_plan}
    if "forward" not in plans:
        raise ModelFileError(f"{Path(path).name} has no method 'forward' (it has: {', '.join(plans)})",
                             "edgekit runs the forward method")
    plan = plans["forward"]
    names = _io_names(plans.get(IO_METHOD))
    blobs = [d.data for d in program.backend_delegate_data]
    delegates = tuple(_delegate(d, blobs) for d in plan.delegates)
    instructions = []
    for chain in plan.chains:
        for instruction in chain.instructions:
            args = instruction.instr_args
            if type(args).__name__ == "KernelCall":
                op = plan.operators[args.op_index]
                instructions.append(("kernel", f"{op.name}.{op.overload}" if op.overload else op.name))
            elif type(args).__name__ == "DelegateCall":
                instructions.append(("delegate", plan.delegates[args.delegate_index].id))
    constants = tuple((SCALAR_TYPES.get(int(v.val.scalar_type), "other"), _numel(v.val.sizes))
                      for v in plan.values if type(v.val).__name__ == "Tensor" and v.val.data_buffer_idx > 0)
    return ProgramInfo(
        instructions=tuple(instructions), delegates=delegates, constants=constants,
        inputs=_specs(plan, plan.inputs, names.get("inputs"), "input"),
        outputs=_specs(plan, plan.outputs, names.get("outputs"), "output"),
    )


def _check_declared_size(data: bytes, name: str) -> None:
    """The extended header (``eh00``) declares the program and segment sizes: they must fit in the file."""
    if len(data) < 8 or data[4:8] != b"ET12":
        raise ModelFileError(f"{name} is not an ExecuTorch program (no ET12 identifier)", "give a .pte file")
    if data[8:12] == b"eh00" and len(data) >= 40:
        length, program_size, segment_base, segment_size = struct.unpack_from("<IQQQ", data, 12)
        segment_size = segment_size if length >= 32 else 0
        needed = max(program_size, segment_base + segment_size if segment_size else 0)
        if needed > len(data):
            raise ModelFileError(f"{name} declares {needed} bytes but holds {len(data)}: it is truncated",
                                 "convert the model again")


def _io_names(plan: Any) -> dict[str, list[str]]:
    """The input/output names of the route's constant method, or {} for a .pte edgekit did not write."""
    if plan is None:
        return {}
    try:
        text = next(v.val.string_val for v in plan.values if type(v.val).__name__ == "String")
        names = json.loads(text)
    except (StopIteration, ValueError, AttributeError):
        return {}
    return {k: [str(n) for n in v] for k, v in names.items() if isinstance(v, list)} if isinstance(names, dict) else {}


def _specs(plan: Any, indices: list[int], names: list[str] | None, prefix: str) -> tuple[TensorSpec, ...]:
    specs = []
    for position, index in enumerate(indices):
        value = plan.values[index].val
        name = names[position] if names and position < len(names) else f"{prefix}_{position}"
        if type(value).__name__ != "Tensor":
            continue
        specs.append(TensorSpec(name=name, shape=tuple(int(d) for d in value.sizes),
                                dtype=SCALAR_TYPES.get(int(value.scalar_type), "float32")))
    return tuple(specs)


def _numel(sizes: Any) -> int:
    count = 1
    for size in sizes:
        count *= int(size)
    return count


def _delegate(entry: Any, blobs: list[bytes]) -> Delegate:
    processed = entry.processed
    if entry.id != XNNPACK or int(processed.location) != 0 or processed.index >= len(blobs):
        return Delegate(entry.id)
    graph = _xnnpack_graph(blobs[processed.index])
    nodes = tuple(str(node.get("xnode_union_type", "?")).removeprefix("XNN") for node in graph.get("xnodes", []))
    constants = []
    for value in graph.get("xvalues", []):
        union = value.get("xvalue_union", {})
        tensor = union.get("tensor_value", union)
        if tensor.get("constant_buffer_idx", 0):
            constants.append((_XNN_TYPES.get(tensor.get("datatype", ""), "other"), _numel(tensor.get("dims", []))))
    return Delegate(XNNPACK, nodes, tuple(constants))


def _xnnpack_graph(blob: bytes) -> dict[str, Any]:
    """The XNNPACK flatbuffer of a delegate blob as JSON, through executorch's flatc and XNNPACK schema."""
    from importlib.resources import files

    from executorch.exir._serialize._flatbuffer import _get_flatc_path

    if blob[4:8] == b"XH00":
        offset, size = struct.unpack_from("<II", blob, 10)
        if offset + size > len(blob):
            raise ModelFileError("an XNNPACK delegate declares more bytes than it holds", "convert the model again")
        flat = blob[offset:offset + size]
    else:
        flat = blob
    schema = Path(str(files("executorch.backends.xnnpack.serialization") / "schema.fbs"))
    with tempfile.TemporaryDirectory(prefix="edgekit-xnn-") as folder:
        binary = Path(folder) / "graph.bin"
        binary.write_bytes(flat)
        done = subprocess.run([_get_flatc_path(), "--json", "--strict-json", "--raw-binary", "--defaults-json",
                               "-o", folder, str(schema), "--", str(binary)], capture_output=True, timeout=120, check=False)
        out = Path(folder) / "graph.json"
        if done.returncode != 0 or not out.is_file():
            raise ModelFileError(f"cannot read an XNNPACK delegate: {first_line(done.stderr.decode(errors='replace'))}",
                                 "convert the model again")
        text = re.sub(r":\s*(-?)inf\b", r": \1Infinity", out.read_text(encoding="utf-8"))  # flatc writes inf
        return json.loads(re.sub(r":\s*-?nan\b", ": NaN", text))


def list_ops(path: Path) -> list[OpInfo]:
    """The instructions of ``forward`` in order: a delegate call is one op named after its backend (its
    XNNPACK nodes in ``targets['xnnpack']``), a kernel call runs in the runtime's portable CPU kernels."""
    info = read_program(path)
    ops, delegate = [], 0
    for index, (kind, op) in enumerate(info.instructions):
        if kind == "delegate":
            nodes = info.delegates[delegate].nodes if delegate < len(info.delegates) else ()
            ops.append(OpInfo(name=f"delegate_{delegate}", op=op, targets={"executorch": (op,), "xnnpack": nodes}))
            delegate += 1
        else:
            ops.append(OpInfo(name=f"{op}#{index}", op=op, targets={"executorch": (op,)}))
    return ops


def partition_report(path: Path) -> dict[str, Any]:
    """Which ops run in XNNPACK (its node types) and which in the portable kernels, read from the .pte."""
    info = read_program(path)
    delegated = Counter(node for d in info.delegates for node in d.nodes)
    portable = Counter(op for kind, op in info.instructions if kind == "kernel")
    return {"delegates": len(info.delegates), "backends": sorted({d.backend for d in info.delegates}),
            "delegated_nodes": dict(delegated), "portable_kernels": dict(portable)}


def read_inputs(path: Path) -> tuple[TensorSpec, ...]:
    return read_program(path).inputs


def weight_counts(path: Path) -> Counter:
    """Weight parameters per stored dtype: XNNPACK constant tensors plus the program's own constants
    (single-element constants are not weights)."""
    info = read_program(path)
    counts: Counter = Counter()
    for dtype, count in (*info.constants, *(c for d in info.delegates for c in d.constants)):
        if count > 1:
            counts[dtype] += count
    return counts


def stored_precision(path: Path) -> str:
    counts = weight_counts(path)
    if counts["int8"] + counts["uint8"] > 0:
        return "int8"
    return "fp16" if counts["float16"] > counts["float32"] else "fp32"
