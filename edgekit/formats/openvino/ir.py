"""What an OpenVINO IR holds, read from its ``.xml`` with the standard library's expat (no external entities)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from math import prod
from pathlib import Path

from edgekit.compat.report import OpInfo, elements
from edgekit.errors import ModelFileError
from edgekit.specs import TensorSpec

MAX_XML_BYTES = 256 * 1024 * 1024
_SKIP = {"Parameter", "Result", "Const"}
_TYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8", "u8": "uint8",
          "i16": "int16", "i32": "int32", "i64": "int64", "boolean": "bool"}


def _root(path: Path) -> ET.Element:
    path = Path(path)
    if path.stat().st_size > MAX_XML_BYTES:
        raise ModelFileError(f"{path} is larger than an OpenVINO IR .xml can reasonably be", "give the IR's .xml file")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ModelFileError(f"{path} is not a readable OpenVINO IR .xml: {exc}", "give the IR's .xml file") from None


def list_ops(path: Path) -> list[OpInfo]:
    """The IR's layers in file order, without parameters, results and constants."""
    ops = []
    for layer in _root(path).iter("layer"):
        op = layer.get("type", "")
        if op in _SKIP:
            continue
        ins = [_port_dims(port) for port in layer.findall("./input/port")]
        outs = [_port_dims(port) for port in layer.findall("./output/port")]
        out = outs[0] if outs else None
        ops.append(OpInfo(name=layer.get("name", layer.get("id", "?")), op=op, targets={"openvino": (op,)},
                          compute=_compute(op, out, ins), output_shape=out))
    return ops


def _port_dims(port: ET.Element) -> tuple[int | None, ...]:
    dims: list[int | None] = []
    for dim in port.findall("dim"):
        text = (dim.text or "").strip()
        dims.append(int(text) if text.lstrip("-").isdigit() and int(text) >= 0 else None)
    return tuple(dims)


def _compute(op: str, out: tuple[int | None, ...] | None, inputs: list[tuple[int | None, ...]]) -> int:
    count = elements(out[1:] if out else None)
    weight = inputs[1] if len(inputs) > 1 else None
    if op == "Convolution" and weight and len(weight) >= 3:
        return count * elements(weight[1:])
    if op == "GroupConvolution" and weight and len(weight) >= 4:
        return count * elements(weight[2:])
    if op == "MatMul" and inputs and inputs[0]:
        return count * int(inputs[0][-1] or 1)
    return count


def read_inputs(path: Path) -> tuple[TensorSpec, ...]:
    """The Parameter layers (name, shape with None for dynamic dimensions, dtype)."""
    specs = []
    for layer in _root(path).iter("layer"):
        if layer.get("type") != "Parameter":
            continue
        data = layer.find("data")
        attrs = data.attrib if data is not None else {}
        dims = [d.strip() for d in attrs.get("shape", "").split(",") if d.strip()]
        shape = tuple(int(d) if d.isdigit() else None for d in dims)
        specs.append(TensorSpec(name=layer.get("name", "?"), shape=shape,
                                dtype=_TYPES.get(attrs.get("element_type", ""), "unknown")))
    return tuple(specs)


def stored_precision(path: Path) -> str:
    """'int8' (FakeQuantize layers or 8-bit constants), 'fp16' or 'fp32'."""
    layers = list(_root(path).iter("layer"))
    kinds = {layer.get("type") for layer in layers}
    kinds |= {data.get("element_type") for layer in layers if layer.get("type") == "Const" for data in layer.findall("data")}
    if kinds & {"FakeQuantize", "i8", "u8"}:
        return "int8"
    return "fp16" if "f16" in kinds else "fp32"


def weight_counts(path: Path) -> Counter:
    """Weight parameters per stored dtype: the Const layers with more than one element (the .bin names its IR)."""
    path = Path(path)
    counts: Counter = Counter()
    for layer in _root(path.with_suffix(".xml") if path.suffix == ".bin" else path).iter("layer"):
        data = layer.find("data") if layer.get("type") == "Const" else None
        if data is None:
            continue
        size = prod(int(d) for d in (data.get("shape") or "").split(",") if d.strip())
        if size > 1:
            kind = data.get("element_type", "")
            counts[_TYPES.get(kind, kind)] += size
    return counts
