"""How much of an artifact's weights is really stored as 8-bit integers, read from the file itself.

``quantized_weight_fraction(path, fmt)`` counts weight parameters (constant tensors with more than one
element: filters, matrices, biases, per-channel scales) by their stored type and returns the fraction
held as int8/uint8. Integer shape constants (int32/int64) are not weights and are not counted.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from math import prod
from pathlib import Path

from edgekit.errors import DataError

INT8 = {"int8", "uint8"}
FLOATS = {"float32", "float16", "bfloat16", "float64"}
_OV_TYPES = {"i8": "int8", "u8": "uint8", "f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64"}


def weight_counts(path: str | Path, fmt: str) -> Counter:
    """Number of weight parameters per stored type (``"int8"``, ``"float32"``, ...) in one artifact."""
    path = Path(path)
    if fmt == "onnx":
        return _onnx_counts(path)
    if fmt == "openvino":
        return _openvino_counts(path)
    if fmt == "tflite":
        return _tflite_counts(path)
    raise DataError(f"unknown artifact format '{fmt}'", "use onnx, openvino or tflite")


def quantized_weight_fraction(path: str | Path, fmt: str) -> float:
    """Fraction of the weight parameters of an artifact stored as int8/uint8 (0.0 when it has none)."""
    counts = weight_counts(path, fmt)
    weights = sum(n for kind, n in counts.items() if kind in INT8 | FLOATS)
    return sum(counts[kind] for kind in INT8) / weights if weights else 0.0


def _onnx_counts(path: Path) -> Counter:
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)  # sizes come from dims: external data need not be read
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

    walk(model.graph)
    return counts


def _openvino_counts(path: Path) -> Counter:
    xml_path = path if path.suffix == ".xml" else path.with_suffix(".xml")
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"cannot read the OpenVINO IR {xml_path}: {exc}", "give the .xml file of an IR") from exc
    counts: Counter = Counter()
    for layer in root.iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        if data is None:
            continue
        dims = [int(d) for d in (data.get("shape") or "").split(",") if d.strip()]
        size = prod(dims)
        if size > 1:
            kind = data.get("element_type", "")
            counts[_OV_TYPES.get(kind, kind)] += size
    return counts


def _tflite_counts(path: Path) -> Counter:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    produced: set[int] = set()
    consumed: set[int] = set()
    for op in interpreter._get_ops_details():  # the public API has no op list; this one is stable since TF 2.5
        produced.update(int(i) for i in op["outputs"])
        consumed.update(int(i) for i in op["inputs"] if i >= 0)
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    counts: Counter = Counter()
    for detail in interpreter.get_tensor_details():
        index = detail["index"]
        if index in produced or index in graph_inputs or index not in consumed:
            continue
        size = int(prod(detail["shape"])) if len(detail["shape"]) else 1
        if size > 1:
            counts[detail["dtype"].__name__] += size
    return counts
