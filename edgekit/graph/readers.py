"""Read the graph (ops and the tensors between them) of an .onnx, .tflite or OpenVINO .xml file without running it.

Op names follow the op listing of each format (``edgekit.formats.*.list_ops``) so that the findings of
``edgekit check`` land on the right node; tensor names are kept so that ``edgekit debug`` layers do too.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edgekit.errors import ModelFileError
from edgekit.graph.model import GraphEdge, GraphNode

MAX_GRAPH_BYTES = 2 * 1024 * 1024 * 1024  # a .tflite is read whole: refuse what cannot be a model
MAX_XML_BYTES = 256 * 1024 * 1024

Graph = tuple[list[GraphNode], list[GraphEdge]]


def _wire(nodes: list[GraphNode], consumed: list[tuple[str, list[str]]]) -> list[GraphEdge]:
    """Edges from each tensor's producer to every node (id, input tensors) that reads it."""
    producer = {tensor: node.id for node in nodes for tensor in node.outputs}
    edges = []
    for node_id, tensors in consumed:
        for tensor in dict.fromkeys(tensors):
            if tensor in producer and producer[tensor] != node_id:
                edges.append(GraphEdge(source=producer[tensor], target=node_id, tensor=tensor))
    return edges


def read_onnx(path: Path) -> Graph:
    """Every node but Constants (named as the op listing names them), graph inputs that are not weights, outputs."""
    import onnx

    from edgekit.compat.source_ops import onnx_shape

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable ONNX model: {type(exc).__name__}", "give a .onnx file") from None
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    nodes = [GraphNode(id=f"in:{vi.name}", name=vi.name, op="input", kind="input", outputs=[vi.name], shape=onnx_shape(vi))
             for vi in graph.input if vi.name not in weights]
    consumed: list[tuple[str, list[str]]] = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        node_id = f"n{index}"
        nodes.append(GraphNode(id=node_id, name=node.name or f"{node.op_type}_{index}", op=node.op_type,
                               outputs=[o for o in node.output if o]))
        consumed.append((node_id, [i for i in node.input if i]))
    for vi in graph.output:
        nodes.append(GraphNode(id=f"out:{vi.name}", name=vi.name, op="output", kind="output", shape=onnx_shape(vi)))
        consumed.append((f"out:{vi.name}", [vi.name]))
    return nodes, _wire(nodes, consumed)


def read_tflite(path: Path) -> Graph:
    """The main subgraph's operators (``<op>_<index>`` as the op listing names them), its inputs and outputs."""
    from ai_edge_litert import schema_py_generated as schema

    if path.stat().st_size > MAX_GRAPH_BYTES:
        raise ModelFileError(f"{path} is larger than a TFLite model can be", "give a .tflite file")
    try:
        model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
        graph = model.subgraphs[0]
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable TFLite flatbuffer: {type(exc).__name__}", "give a .tflite file") from None
    codes = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    tensors = graph.tensors or []

    def name(index: int) -> str:
        raw = tensors[index].name
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def shape(index: int) -> tuple[int | None, ...] | None:
        dims = tensors[index].shape
        return None if dims is None else tuple(int(d) for d in dims)

    valid = range(len(tensors))
    nodes = [GraphNode(id=f"in:{i}", name=name(i), op="input", kind="input", outputs=[name(i)], shape=shape(i))
             for i in (graph.inputs if graph.inputs is not None else []) if i in valid]
    consumed: list[tuple[str, list[str]]] = []
    for index, operator in enumerate(graph.operators or []):
        code = model.operatorCodes[operator.opcodeIndex]
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
        op = custom if builtin == schema.BuiltinOperator.CUSTOM else codes.get(builtin, f"OP_{builtin}")
        outs = [i for i in (operator.outputs if operator.outputs is not None else []) if i in valid]
        nodes.append(GraphNode(id=f"n{index}", name=f"{op.lower()}_{index}", op=op, outputs=[name(i) for i in outs],
                               shape=shape(outs[0]) if outs else None))
        consumed.append((f"n{index}", [name(i) for i in (operator.inputs if operator.inputs is not None else []) if i in valid]))
    for i in graph.outputs if graph.outputs is not None else []:
        if i in valid:
            nodes.append(GraphNode(id=f"out:{i}", name=name(i), op="output", kind="output", shape=shape(i)))
            consumed.append((f"out:{i}", [name(i)]))
    return nodes, _wire(nodes, consumed)


def read_openvino(path: Path) -> Graph:
    """The IR's layers without constants (Parameters as inputs, Results as outputs) and its edges."""
    if path.stat().st_size > MAX_XML_BYTES:
        raise ModelFileError(f"{path} is larger than an OpenVINO IR .xml can reasonably be", "give the IR's .xml file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ModelFileError(f"{path} is not a readable OpenVINO IR .xml: {exc}", "give the IR's .xml file") from None
    kinds = {"Parameter": "input", "Result": "output"}
    nodes, ids = [], set()
    for layer in root.iter("layer"):
        op = layer.get("type", "")
        if op == "Const":
            continue
        layer_id = layer.get("id", "")
        dims = [d.text for d in layer.findall("./output/port[1]/dim")] or [d.text for d in layer.findall("./input/port[1]/dim")]
        shape = tuple(int(t) if (t or "").strip().isdigit() else None for t in dims) or None
        nodes.append(GraphNode(id=f"n{layer_id}", name=layer.get("name", layer_id), op=op, kind=kinds.get(op, "op"),
                               outputs=[layer.get("name", layer_id)], shape=shape))
        ids.add(f"n{layer_id}")
    edges = [GraphEdge(source=f"n{e.get('from-layer')}", target=f"n{e.get('to-layer')}")
             for e in root.iter("edge") if f"n{e.get('from-layer')}" in ids and f"n{e.get('to-layer')}" in ids]
    return nodes, edges


READERS = {"onnx": read_onnx, "tflite": read_tflite, "openvino": read_openvino}
