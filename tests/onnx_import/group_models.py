"""A handful of multi-op ONNX models grouping the importer's ops, for the full round trip through litert-torch."""
from __future__ import annotations

from typing import Any

import numpy as np
from onnx import helper

from onnx_graphs import graph_model, rand

I64 = np.int64


def vision() -> tuple[Any, dict[str, np.ndarray]]:
    """Conv (groups, SAME, dilation), BatchNormalization, HardSwish, MaxPool, Resize, Concat, ConvTranspose,
    AveragePool, GlobalAveragePool, Flatten, Gemm, Softmax: a small opset-18 image classifier with a side output."""
    x = rand(1, 3, 32, 32, seed=1)
    c = {
        "w1": rand(8, 3, 3, 3, seed=2) * 0.3, "b1": rand(8, seed=3) * 0.1, "s": np.abs(rand(8, seed=4)) + 0.5,
        "bb": rand(8, seed=5) * 0.1, "m": rand(8, seed=6) * 0.1, "v": np.abs(rand(8, seed=7)) + 0.5,
        "wd": rand(8, 1, 3, 3, seed=8) * 0.3, "w2": rand(16, 8, 3, 3, seed=9) * 0.2,
        "roi": np.array([], np.float32), "scales": np.array([1, 1, 2, 2], np.float32),
        "wt": rand(24, 8, 2, 2, seed=10) * 0.2, "fw": rand(10, 8, seed=11) * 0.3, "fb": rand(10, seed=12) * 0.1,
    }
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], auto_pad="SAME_UPPER"),
        n("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["bn"]),
        n("HardSwish", ["bn"], ["h"]),
        n("Conv", ["h", "wd"], ["dw"], group=8, pads=[2, 2, 2, 2], dilations=[2, 2]),
        n("Relu", ["dw"], ["r"]),
        n("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        n("Resize", ["c2", "roi", "scales"], ["up"], mode="nearest", coordinate_transformation_mode="asymmetric",
          nearest_mode="floor"),
        n("Concat", ["up", "r"], ["cat"], axis=1),
        n("ConvTranspose", ["cat", "wt"], ["ct"], strides=[2, 2]),
        n("Sigmoid", ["ct"], ["mask"]),
        n("AveragePool", ["r"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("GlobalAveragePool", ["ap"], ["g"]),
        n("Flatten", ["g"], ["f"]),
        n("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
        n("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    return graph_model(nodes, {"x": x}, ["probs", "mask"], 18, c), {"x": x}


def sequence() -> tuple[Any, dict[str, np.ndarray]]:
    """LSTM (bidirectional, states in and out), GRU, LayerNormalization, Einsum, MatMul, Gelu, Split, Slice,
    Transpose, Reshape, ReduceMean (input axes), Where, Clip: a small opset-20 sequence model."""
    x, h0, c0 = rand(6, 1, 8, seed=20), rand(2, 1, 12, seed=21) * 0.5, rand(2, 1, 12, seed=22) * 0.5
    c = {
        "lw": rand(2, 48, 8, seed=23) * 0.3, "lr": rand(2, 48, 12, seed=24) * 0.3, "lb": rand(2, 96, seed=25) * 0.1,
        "gw": rand(1, 36, 24, seed=26) * 0.3, "gr": rand(1, 36, 12, seed=27) * 0.3, "gb": rand(1, 72, seed=28) * 0.1,
        "perm_shape": np.array([6, 24], I64), "ln_s": np.abs(rand(24, seed=29)) + 0.5, "ln_b": rand(24, seed=30) * 0.1,
        "att": rand(24, 24, seed=31) * 0.2, "split": np.array([12, 12], I64), "starts": np.array([1], I64),
        "ends": np.array([np.iinfo(np.int64).max], I64), "axes": np.array([0], I64), "mean_axes": np.array([-1], I64),
        "zero": np.array(0.0, np.float32), "lo": np.array(-1.0, np.float32), "hi": np.array(1.0, np.float32),
    }
    n = helper.make_node
    nodes = [
        n("LSTM", ["x", "lw", "lr", "lb", "", "h0", "c0"], ["y", "yh", "yc"], hidden_size=12, direction="bidirectional"),
        n("Transpose", ["y"], ["yt"], perm=[0, 2, 1, 3]),
        n("Reshape", ["yt", "perm_shape"], ["seq"]),
        n("LayerNormalization", ["seq", "ln_s", "ln_b"], ["ln"], axis=-1),
        n("Einsum", ["ln", "ln"], ["scores"], equation="id,jd->ij"),
        n("Softmax", ["scores"], ["weights"], axis=-1),
        n("MatMul", ["weights", "ln"], ["ctx"]),
        n("MatMul", ["ctx", "att"], ["proj"]),
        n("Gelu", ["proj"], ["act"]),
        n("Split", ["act", "split"], ["left", "right"], axis=1),
        n("Mul", ["left", "right"], ["gated"]),
        n("Slice", ["gated", "starts", "ends", "axes"], ["tail"]),
        n("ReduceMean", ["tail", "mean_axes"], ["pooled"], keepdims=1),
        n("Greater", ["pooled", "zero"], ["positive"]),
        n("Clip", ["pooled", "lo", "hi"], ["clipped"]),
        n("Where", ["positive", "clipped", "pooled"], ["score"]),
        n("Unsqueeze", ["act", "axes"], ["act3"]),
        n("Transpose", ["act3"], ["act_seq"], perm=[1, 0, 2]),
        n("GRU", ["act_seq", "gw", "gr", "gb"], ["gy", "gh"], hidden_size=12, linear_before_reset=1),
    ]
    model = graph_model(nodes, {"x": x, "h0": h0, "c0": c0}, ["score", "gh", "yh", "yc"], 20, c)
    return model, {"x": x, "h0": h0, "c0": c0}


def unsupported() -> tuple[Any, dict[str, np.ndarray]]:
    """A Conv then a CumSum: ONNX Runtime and OpenVINO run it, the TFLite importer refuses the CumSum."""
    x = rand(1, 2, 6, 6, seed=40)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("CumSum", ["c", "axis"], ["y"], name="running_total")]
    model = graph_model(nodes, {"x": x}, ["y"], 14, {"w": rand(3, 2, 3, 3, seed=41), "axis": np.array(2, I64)})
    return model, {"x": x}


