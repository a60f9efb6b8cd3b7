"""What a .tflite file holds, read from the flatbuffer without running it.

The flatbuffer is read with ``ai_edge_litert.schema_py_generated`` (pure Python): the operator codes in
execution order, the declared inputs and the stored tensor types. Compute per op: MACs for convolutions
and matrix products, output elements otherwise (see ``edgekit.compat.report``).
"""
from __future__ import annotations

from pathlib import Path

from edgekit.compat.report import OpInfo, elements
from edgekit.errors import ModelFileError
from edgekit.specs import TensorSpec


def _model(path: Path):
    from ai_edge_litert import schema_py_generated as schema

    try:
        return schema, schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable TFLite flatbuffer: {type(exc).__name__}", "give a .tflite file") from None


def list_ops(path: Path) -> list[OpInfo]:
    """Ops of every subgraph in execution order."""
    schema, model = _model(path)
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    ops = []
    for subgraph in model.subgraphs or []:
        tensors = subgraph.tensors or []
        for index, operator in enumerate(subgraph.operators or []):
            code = model.operatorCodes[operator.opcodeIndex]
            builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
            op = (code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)) \
                if builtin == schema.BuiltinOperator.CUSTOM else names.get(builtin, f"OP_{builtin}")
            shapes = [tuple(tensors[i].shape) if i >= 0 and tensors[i].shape is not None else None for i in operator.inputs]
            first = tensors[operator.outputs[0]] if len(operator.outputs) else None
            out = tuple(first.shape) if first is not None and first.shape is not None else None
            ops.append(OpInfo(name=f"{op.lower()}_{index}", op=op, targets={"tflite": (op,)},
                              compute=_compute(op, out, shapes), output_shape=out))
    return ops


def _compute(op: str, out: tuple[int, ...] | None, inputs: list[tuple[int, ...] | None]) -> int:
    count = elements(out[1:] if out else None)
    weight = inputs[1] if len(inputs) > 1 else None
    if op == "CONV_2D" and weight and len(weight) == 4:  # OHWI
        return count * elements(weight[1:])
    if op == "DEPTHWISE_CONV_2D" and weight and len(weight) == 4:  # 1HWC
        return count * elements(weight[1:3])
    if op == "FULLY_CONNECTED" and weight and len(weight) == 2:
        return count * int(weight[1])
    if op == "BATCH_MATMUL" and inputs and inputs[0]:
        return count * int(inputs[0][-1])
    if op == "TRANSPOSE_CONV" and len(inputs) > 2 and inputs[1] and inputs[2]:
        return elements(inputs[2][1:]) * elements(inputs[1][:3])
    return count


def read_inputs(path: Path) -> tuple[TensorSpec, ...]:
    """The first subgraph's inputs (name, shape with None for dynamic dimensions, dtype)."""
    schema, model = _model(path)
    graph = model.subgraphs[0]
    types = {value: key.lower() for key, value in vars(schema.TensorType).items() if not key.startswith("_")}
    specs = []
    for index in graph.inputs:
        tensor = graph.tensors[index]
        dims = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
        specs.append(TensorSpec(name=name, shape=tuple(None if d < 0 else int(d) for d in dims),
                                dtype=types.get(tensor.type, "unknown")))
    return tuple(specs)


def stored_precision(path: Path) -> str:
    """'int8', 'fp16' or 'fp32': what the stored tensor types say the file was built at."""
    schema, model = _model(path)
    kinds = {t.type for g in model.subgraphs or [] for t in g.tensors or []}
    if kinds & {schema.TensorType.INT8, schema.TensorType.UINT8}:
        return "int8"
    return "fp16" if schema.TensorType.FLOAT16 in kinds else "fp32"
