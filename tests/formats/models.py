"""The contract suite's small models, written directly (no converter): the same graph in every format.

``y = x + float(k)`` with a float32 input ``x`` [1, 4] and an integer input ``k`` [1, 4]; and a quantized
one: an integer input ``q`` with a scale and zero point, ``out`` its value requantized (TFLite) or
dequantized (ONNX, OpenVINO). TFLite files are packed with the LiteRT flatbuffer schema.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

X = np.array([[0.5, -1.25, 2.0, 3.0]])  # float64 on purpose: runners cast feeds to the input dtype
K = [[1, 2, 3, 4]]  # Python ints
Y = np.array([[1.5, 0.75, 5.0, 7.0]], np.float32)
Q_SCALE, Q_ZERO = 0.5, 128  # the uint8 input of the quantized model
OUT_SCALE, OUT_ZERO = 0.25, -2  # the int8 output of the quantized TFLite model


def _tflite(path: Path, tensors: list, operators: list[tuple[int, list[int], list[int]]], codes: list[int],
            inputs: list[int], outputs: list[int]) -> Path:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT()
    model.version = 3
    model.operatorCodes = []
    for code in codes:
        entry = s.OperatorCodeT()
        entry.builtinCode = entry.deprecatedBuiltinCode = code
        entry.version = 1
        model.operatorCodes.append(entry)
    graph = s.SubGraphT()
    graph.name = "main"
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [], inputs, outputs, []
    for name, dtype, quant in tensors:
        tensor = s.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.buffer = name.encode(), [1, 4], dtype, 0
        if quant:
            tensor.quantization = s.QuantizationParametersT()
            tensor.quantization.scale, tensor.quantization.zeroPoint = [quant[0]], [quant[1]]
        graph.tensors.append(tensor)
    for code_index, ins, outs in operators:
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = code_index, ins, outs
        graph.operators.append(op)
    model.subgraphs = [graph]
    model.buffers = [s.BufferT()]
    signature = s.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs, signature.outputs = [], []
    for names, indices in ((signature.inputs, inputs), (signature.outputs, outputs)):
        for index in indices:
            entry = s.TensorMapT()
            entry.name, entry.tensorIndex = tensors[index][0], index
            names.append(entry)
    model.signatureDefs = [signature]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def tflite_model(path: Path) -> Path:
    from ai_edge_litert import schema_py_generated as s

    t, op = s.TensorType, s.BuiltinOperator
    tensors = [("x", t.FLOAT32, None), ("k", t.INT32, None), ("kf", t.FLOAT32, None), ("y", t.FLOAT32, None)]
    return _tflite(path, tensors, [(0, [1], [2]), (1, [0, 2], [3])], [op.CAST, op.ADD], [0, 1], [3])


def tflite_quantized(path: Path) -> Path:
    """uint8 ``q`` (scale 0.5, zero point 128) requantized to int8 ``out`` (scale 0.25, zero point -2)."""
    from ai_edge_litert import schema_py_generated as s

    tensors = [("q", s.TensorType.UINT8, (Q_SCALE, Q_ZERO)), ("out", s.TensorType.INT8, (OUT_SCALE, OUT_ZERO))]
    return _tflite(path, tensors, [(0, [0], [1])], [s.BuiltinOperator.QUANTIZE], [0], [1])


def onnx_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT), helper.make_node("Add", ["x", "kf"], ["y"])],
        "contract", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                     helper.make_tensor_value_info("k", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def onnx_quantized(path: Path) -> Path:
    """uint8 ``q`` dequantized with scale 0.5 and zero point 128 into float ``out``."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["out"])], "quantized",
        [helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [Q_SCALE]),
         helper.make_tensor("zero", TensorProto.UINT8, [], [Q_ZERO])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def openvino_ir(onnx_path: Path, xml: Path) -> Path:
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return xml


def executorch_model(path: Path, quantized: bool = False) -> Path:
    """``y = x + float(k)`` lowered to an ExecuTorch .pte with XNNPACK (the route's own lowering); with
    ``quantized``, ``out = 2 * q`` quantized to int8 by the pt2e XNNPACK quantizer (float I/O, as ExecuTorch
    programs have: the quantize/dequantize steps are inside the program)."""
    import torch

    from edgekit.converters.torch_executorch import _lower

    class Add(torch.nn.Module):
        def forward(self, x, k):
            return x + k.to(torch.float32)

    class Scale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4, bias=False)
            self.fc.weight.data = 2 * torch.eye(4)

        def forward(self, q):
            return self.fc(q)

    if not quantized:
        args = (torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.int64))
        program, names = torch.export.export(Add(), args), (["x", "k"], ["y"])
    else:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        args = (torch.tensor([[1.0, -2.0, 3.5, 0.0]]),)
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(Scale().eval(), args).module(), quantizer)
        prepared(torch.tensor([[-4.0, 4.0, 7.0, 0.0]]))
        program, names = torch.export.export(convert_pt2e(prepared), args), (["q"], ["out"])
    path.write_bytes(_lower(program, *names)[0].to_executorch().buffer)
    return path
