"""Small ONNX models shaped like silero-vad: an int64 scalar ``sr``, an ``If`` on ``sr == 16000`` whose branches
hold conv/matmul weights, and a recurrent state input."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _branch(name, rng, kernel, stride):
    conv_w = numpy_helper.from_array(rng.standard_normal((16, 1, kernel)).astype(np.float32) * 0.2, f"{name}_conv_w")
    proj_w = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32) * 0.2, f"{name}_proj_w")
    shape = numpy_helper.from_array(np.array([1, 1, -1], np.int64), f"{name}_shape")
    nodes = [
        helper.make_node("Reshape", ["input", f"{name}_shape"], [f"{name}_x"]),
        helper.make_node("Conv", [f"{name}_x", f"{name}_conv_w"], [f"{name}_c"], strides=[stride], name=f"{name}_conv"),
        helper.make_node("Relu", [f"{name}_c"], [f"{name}_r"]),
        helper.make_node("ReduceMean", [f"{name}_r"], [f"{name}_m"], axes=[2], keepdims=0),
        helper.make_node("MatMul", [f"{name}_m", f"{name}_proj_w"], [f"{name}_out"], name=f"{name}_proj"),
    ]
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, 32])
    return helper.make_graph(nodes, name, [], [out], [conv_w, proj_w, shape])


def build(seed: int = 0, data_dependent: bool = False) -> onnx.ModelProto:
    """The model; ``data_dependent`` makes the If condition depend on the audio too (it cannot fold)."""
    rng = np.random.default_rng(seed)
    then_g = _branch("sr16k", rng, 32, 16)
    else_g = _branch("sr8k", rng, 16, 8)
    cell_w = numpy_helper.from_array(rng.standard_normal((32 + 32, 32)).astype(np.float32) * 0.2, "cell_w")
    head_w = numpy_helper.from_array(rng.standard_normal((32, 1)).astype(np.float32) * 0.3, "head_w")
    k16000 = numpy_helper.from_array(np.array(16000, np.int64), "k16000")
    condition = [helper.make_node("Equal", ["sr", "k16000"], ["is16k"])]
    if data_dependent:
        condition = [
            helper.make_node("ReduceSum", ["input"], ["energy"], keepdims=0),
            helper.make_node("Cast", ["sr"], ["sr_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["energy", "sr_f"], ["weighted"]),
            helper.make_node("Greater", ["weighted", "zero"], ["is16k"]),
        ]
    nodes = [
        *condition,
        helper.make_node("If", ["is16k"], ["features"], then_branch=then_g, else_branch=else_g, name="sr_switch"),
        helper.make_node("Concat", ["features", "state"], ["joined"], axis=1),
        helper.make_node("MatMul", ["joined", "cell_w"], ["pre"], name="cell"),
        helper.make_node("Tanh", ["pre"], ["stateN"]),
        helper.make_node("MatMul", ["stateN", "head_w"], ["logit"], name="head"),
        helper.make_node("Sigmoid", ["logit"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "vad_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 512]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, 32]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1]),
         helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [1, 32])],
        [cell_w, head_w, k16000, numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
