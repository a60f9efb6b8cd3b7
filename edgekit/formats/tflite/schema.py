"""The ops an artifact really holds, read from the file without running it.

TFLite: the flatbuffer's operator codes (``ai_edge_litert.schema_py_generated``, pure Python); ONNX: the
graph's nodes (``onnx.load`` without external data) with shape inference; OpenVINO: the layer types of
the IR ``.xml`` (parsed with the standard library's expat, which resolves no external entities). Compute
per op: MACs for convolutions and matrix products, output elements otherwise (see ``report``).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from edgekit.compat.report import OpInfo
from edgekit.errors import ModelFileError
from edgekit.specs import TensorSpec

_MAX_IR_XML_BYTES = 256 * 1024 * 1024
_IR_SKIP = {"Parameter", "Result", "Const"}


def artifact_ops(path: Path, fmt: str) -> list[OpInfo]:
    """Ops of the artifact at ``path`` in execution order (``fmt``: tflite, onnx or openvino)."""
    path = Path(path)
    if fmt == "tflite":
        return _tflite_ops(path)
    if fmt == "onnx":
        return _onnx_ops(path)
    if fmt == "openvino":
        return _openvino_ops(path)
    raise ValueError(f"unknown format {fmt}")


def _elements(shape: tuple[int, ...] | list[int] | None) -> int:
    dims = [int(d) for d in (shape or ()) if d is not None and int(d) > 0]
    return math.prod(dims) if dims else 0


def _tflite_ops(path: Path) -> list[OpInfo]:
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable TFLite flatbuffer: {type(exc).__name__}", "give a .tflite file") from None
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
                              compute=_tflite_compute(op, out, shapes), output_shape=out))
    return ops


def _tflite_compute(op: str, out: tuple[int, ...] | None, inputs: list[tuple[int, ...] | None]) -> int:
    elements = _elements(out[1:] if out else None)
    weight = inputs[1] if len(inputs) > 1 else None
    if op == "CONV_2D" and weight and len(weight) == 4:  # OHWI
        return elements * _elements(weight[1:])
    if op == "DEPTHWISE_CONV_2D" and weight and len(weight) == 4:  # 1HWC
        return elements * _elements(weight[1:3])
    if op == "FULLY_CONNECTED" and weight and len(weight) == 2:
        return elements * int(weight[1])
    if op == "BATCH_MATMUL" and inputs and inputs[0]:
        return elements * int(inputs[0][-1])
    if op == "TRANSPOSE_CONV" and len(inputs) > 2 and inputs[1] and inputs[2]:
        return _elements(inputs[2][1:]) * _elements(inputs[1][:3])
    return elements


def _onnx_ops(path: Path) -> list[OpInfo]:
    import onnx

    from edgekit.compat.source_ops import onnx_graph_ops

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable ONNX model: {type(exc).__name__}", "give a .onnx file") from None
    return onnx_graph_ops(model, lambda op_type: {"onnx": (op_type,)})


def _openvino_ops(path: Path) -> list[OpInfo]:
    if path.stat().st_size > _MAX_IR_XML_BYTES:
        raise ModelFileError(f"{path} is larger than an OpenVINO IR .xml can reasonably be", "give the IR's .xml file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ModelFileError(f"{path} is not a readable OpenVINO IR .xml: {exc}", "give the IR's .xml file") from None
    ops = []
    for layer in root.iter("layer"):
        op = layer.get("type", "")
        if op in _IR_SKIP:
            continue
        ins = [_port_dims(port) for port in layer.findall("./input/port")]
        outs = [_port_dims(port) for port in layer.findall("./output/port")]
        out = outs[0] if outs else None
        ops.append(OpInfo(name=layer.get("name", layer.get("id", "?")), op=op, targets={"openvino": (op,)},
                          compute=_ir_compute(op, out, ins), output_shape=out))
    return ops


def _port_dims(port: ET.Element) -> tuple[int, ...]:
    dims = []
    for dim in port.findall("dim"):
        text = (dim.text or "").strip()
        dims.append(int(text) if text.lstrip("-").isdigit() and int(text) >= 0 else None)
    return tuple(dims)


def _ir_compute(op: str, out: tuple[int, ...] | None, inputs: list[tuple[int, ...]]) -> int:
    elements = _elements(out[1:] if out else None)
    weight = inputs[1] if len(inputs) > 1 else None
    if op == "Convolution" and weight and len(weight) >= 3:
        return elements * _elements(weight[1:])
    if op == "GroupConvolution" and weight and len(weight) >= 4:
        return elements * _elements(weight[2:])
    if op == "MatMul" and inputs and inputs[0]:
        return elements * int(inputs[0][-1] or 1)
    return elements


_IR_TYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "i8": "int8", "u8": "uint8", "i16": "int16",
             "i32": "int32", "i64": "int64", "boolean": "bool"}


def artifact_inputs(path: Path, fmt: str) -> tuple[TensorSpec, ...]:
    """The artifact's input specs (name, shape with None for dynamic dimensions, dtype), read from the file."""
    path = Path(path)
    if fmt == "tflite":
        from ai_edge_litert import schema_py_generated as schema

        model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
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
    if fmt == "onnx":
        import onnx

        from edgekit.compat.source_ops import onnx_shape

        graph = onnx.load(str(path), load_external_data=False).graph
        weights = {t.name for t in graph.initializer}
        return tuple(TensorSpec(name=vi.name, shape=onnx_shape(vi) or (),
                                dtype=str(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)))
                     for vi in graph.input if vi.name not in weights)
    root = ET.parse(path).getroot()
    specs = []
    for layer in root.iter("layer"):
        if layer.get("type") != "Parameter":
            continue
        data = layer.find("data")
        attrs = data.attrib if data is not None else {}
        dims = [d.strip() for d in attrs.get("shape", "").split(",") if d.strip()]
        shape = tuple(int(d) if d.isdigit() else None for d in dims)
        dtype = _IR_TYPES.get(attrs.get("element_type", ""), "unknown")
        specs.append(TensorSpec(name=layer.get("name", "?"), shape=shape, dtype=dtype))
    return tuple(specs)


def artifact_precision(path: Path, fmt: str) -> str:
    """'int8', 'fp16' or 'fp32': what the artifact's weights say it was built at."""
    path = Path(path)
    if fmt == "tflite":
        from ai_edge_litert import schema_py_generated as schema

        model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
        kinds = {t.type for g in model.subgraphs or [] for t in g.tensors or []}
        int8, fp16 = {schema.TensorType.INT8, schema.TensorType.UINT8}, {schema.TensorType.FLOAT16}
    elif fmt == "onnx":
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        kinds = {t.data_type for t in graph.initializer} | {n.op_type for n in graph.node}
        int8, fp16 = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8, "QuantizeLinear"}, {onnx.TensorProto.FLOAT16}
    else:
        root = ET.parse(path).getroot()
        kinds = {layer.get("type") for layer in root.iter("layer")}
        kinds |= {data.get("element_type") for layer in root.iter("layer") if layer.get("type") == "Const"
                  for data in layer.findall("data")}
        int8, fp16 = {"FakeQuantize", "i8", "u8"}, {"f16"}
    return "int8" if kinds & int8 else "fp16" if kinds & fp16 else "fp32"
