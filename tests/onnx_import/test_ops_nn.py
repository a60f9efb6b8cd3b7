"""Convolution, pooling, resize and recurrent handlers against ONNX Runtime, across attributes and opsets."""
from __future__ import annotations

import numpy as np
import pytest

from onnx_graphs import max_error, rand, single_node

TOL = 1e-4


@pytest.mark.parametrize("attrs", [
    {}, {"pads": [1, 1, 1, 1]}, {"pads": [0, 1, 2, 1], "strides": [2, 2]}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"auto_pad": "SAME_LOWER", "strides": [2, 1]}, {"auto_pad": "VALID", "strides": [2, 2]}, {"dilations": [2, 2], "pads": [2, 2, 2, 2]},
    {"group": 2, "pads": [1, 1, 1, 1]}, {"group": 4, "kernel_shape": [3, 3]},
])
@pytest.mark.parametrize("opset", [1, 11])
def test_conv2d(attrs: dict, opset: int) -> None:
    x = rand(1, 4, 9, 8, seed=1)
    groups = attrs.get("group", 1)
    constants = {"w": rand(6 if groups != 4 else 4, 4 // groups, 3, 3, seed=2), "b": rand(6 if groups != 4 else 4, seed=3)}
    assert max_error(single_node("Conv", {"x": x}, opset, constants=constants, **attrs), {"x": x}) < TOL


@pytest.mark.parametrize("rank,attrs", [(1, {"pads": [1, 2], "strides": [2]}), (3, {"pads": [1, 1, 1, 1, 1, 1]})])
def test_conv_1d_and_3d(rank: int, attrs: dict) -> None:
    x = rand(1, 2, *([7] * rank), seed=4)
    w = rand(3, 2, *([3] * rank), seed=5)
    assert max_error(single_node("Conv", {"x": x}, 13, constants={"w": w}, **attrs), {"x": x}) < TOL


@pytest.mark.parametrize("attrs", [
    {}, {"strides": [2, 2]}, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, {"strides": [2, 2], "output_padding": [1, 1]},
    {"strides": [2, 2], "pads": [0, 1, 1, 0]}, {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"}, {"strides": [2, 2], "output_shape": [11, 12]},
    {"group": 2, "strides": [2, 2], "dilations": [2, 1]},
])
def test_conv_transpose(attrs: dict) -> None:
    x = rand(1, 4, 5, 6, seed=6)
    groups = attrs.get("group", 1)
    constants = {"w": rand(4, 6 // groups if groups > 1 else 3, 3, 3, seed=7), "b": rand(6 if groups > 1 else 3, seed=8)}
    assert max_error(single_node("ConvTranspose", {"x": x}, 11, constants=constants, **attrs), {"x": x}) < TOL


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2], "strides": [2, 2]}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [3, 3], "pads": [0, 1, 2, 1]}, {"kernel_shape": [3, 3], "dilations": [2, 2]},
])
@pytest.mark.parametrize("opset", [10, 12])
def test_max_pool(attrs: dict, opset: int) -> None:
    x = rand(1, 3, 9, 10, seed=9)
    assert max_error(single_node("MaxPool", {"x": x}, opset, **attrs), {"x": x}) < TOL


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2], "strides": [2, 2]}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "pads": [0, 1, 2, 1]}, {"kernel_shape": [3, 3], "pads": [0, 1, 2, 1], "count_include_pad": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2]},
])
def test_average_pool(attrs: dict) -> None:
    x = rand(1, 3, 9, 10, seed=10)
    assert max_error(single_node("AveragePool", {"x": x}, 11, **attrs), {"x": x}) < TOL


@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op_type: str) -> None:
    x = rand(2, 3, 5, 4, seed=11)
    assert max_error(single_node(op_type, {"x": x}, 13), {"x": x}) < TOL


_RESIZE_CASES = [
    ("nearest", "asymmetric", "floor", [1, 1, 2, 2], None), ("nearest", "asymmetric", "floor", [1, 1, 1.5, 2.5], None),
    ("nearest", "half_pixel", "round_prefer_floor", [1, 1, 0.5, 0.5], None),
    ("nearest", "half_pixel", "round_prefer_ceil", [1, 1, 2, 3], None),
    ("nearest", "align_corners", "round_prefer_floor", None, [1, 2, 7, 9]),
    ("nearest", "tf_half_pixel_for_nn", "ceil", [1, 1, 2, 2], None),
    ("nearest", "pytorch_half_pixel", "round_prefer_floor", None, [1, 2, 1, 13]),
    ("linear", "half_pixel", "round_prefer_floor", [1, 1, 2, 2], None), ("linear", "half_pixel", "", None, [1, 2, 5, 7]),
    ("linear", "align_corners", "", [1, 1, 2, 2], None), ("linear", "asymmetric", "", [1, 1, 2, 1.5], None),
    ("linear", "pytorch_half_pixel", "", None, [1, 2, 1, 8]), ("linear", "half_pixel", "", [1, 1, 0.5, 0.6], None),
]


@pytest.mark.parametrize("mode,coordinate,nearest_mode,scales,sizes", _RESIZE_CASES)
@pytest.mark.parametrize("opset", [11, 13, 19])
def test_resize(mode: str, coordinate: str, nearest_mode: str, scales, sizes, opset: int) -> None:
    x = rand(1, 2, 6, 5, seed=12)
    attrs = {"mode": mode, "coordinate_transformation_mode": coordinate}
    if nearest_mode:
        attrs["nearest_mode"] = nearest_mode
    constants = {"roi": np.array([], dtype=np.float32)}
    if scales is not None:
        constants["scales"] = np.array(scales, dtype=np.float32)
    else:
        constants.update(scales=np.array([], dtype=np.float32), sizes=np.array(sizes, dtype=np.int64))
    assert max_error(single_node("Resize", {"x": x}, opset, constants=constants, **attrs), {"x": x}) < TOL


def test_resize_opset10_and_upsample() -> None:
    x = rand(1, 2, 4, 3, seed=13)
    scales = {"scales": np.array([1, 1, 2, 3], dtype=np.float32)}
    assert max_error(single_node("Resize", {"x": x}, 10, constants=scales, mode="nearest"), {"x": x}) < TOL
    assert max_error(single_node("Upsample", {"x": x}, 9, constants=scales, mode="nearest"), {"x": x}) < TOL
    assert max_error(single_node("Resize", {"x": x}, 10, constants=scales, mode="linear"), {"x": x}) < TOL


def test_resize18_axes_and_aspect_ratio() -> None:
    x = rand(1, 2, 6, 4, seed=14)
    sizes = {"roi": np.array([], dtype=np.float32), "scales": np.array([], dtype=np.float32),
             "sizes": np.array([9, 9], dtype=np.int64)}
    for policy in ("stretch", "not_larger", "not_smaller"):
        model = single_node("Resize", {"x": x}, 18, constants=sizes, axes=[2, 3], mode="linear", keep_aspect_ratio_policy=policy)
        assert max_error(model, {"x": x}) < TOL, policy


def _rnn_constants(op: str, directions: int, hidden: int, size: int, with_state: bool) -> dict:
    gates = 4 if op == "LSTM" else 3
    constants = {"w": rand(directions, gates * hidden, size, seed=20) * 0.5, "r": rand(directions, gates * hidden, hidden, seed=21) * 0.5,
                 "b": rand(directions, 2 * gates * hidden, seed=22) * 0.5}
    if with_state:
        constants["h0"] = rand(directions, 2, hidden, seed=23)
        if op == "LSTM":
            constants["c0"] = rand(directions, 2, hidden, seed=24)
    return constants


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm(direction: str, with_state: bool) -> None:
    x = rand(5, 2, 3, seed=25)
    directions = 2 if direction == "bidirectional" else 1
    constants = _rnn_constants("LSTM", directions, 4, 3, with_state)
    order = ["x", "w", "r", "b", "", "h0", "c0"] if with_state else ["x", "w", "r", "b"]
    model = single_node("LSTM", {"x": x}, 14, constants=constants, order=order, outputs=3, hidden_size=4, direction=direction)
    assert max_error(model, {"x": x}) < TOL


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru(direction: str, linear_before_reset: int) -> None:
    x = rand(4, 2, 3, seed=26)
    directions = 2 if direction == "bidirectional" else 1
    constants = _rnn_constants("GRU", directions, 5, 3, True)
    model = single_node("GRU", {"x": x}, 14, constants=constants, order=["x", "w", "r", "b", "", "h0"], outputs=2,
                        hidden_size=5, direction=direction, linear_before_reset=linear_before_reset)
    assert max_error(model, {"x": x}) < TOL


def test_lstm_state_as_graph_input() -> None:
    """A streaming model (silero-vad style): the state comes in as an input and goes out as an output."""
    x, h0, c0 = rand(1, 1, 3, seed=27), rand(1, 1, 4, seed=28), rand(1, 1, 4, seed=29)
    constants = _rnn_constants("LSTM", 1, 4, 3, False)
    model = single_node("LSTM", {"x": x, "h0": h0, "c0": c0}, 14, constants=constants,
                        order=["x", "w", "r", "b", "", "h0", "c0"], outputs=3, hidden_size=4)
    assert max_error(model, {"x": x, "h0": h0, "c0": c0}, export=True) < TOL


@pytest.mark.parametrize("size", [3, 5])
def test_lrn(size: int) -> None:
    x = rand(1, 7, 4, 4, seed=30) * 3
    assert max_error(single_node("LRN", {"x": x}, 13, size=size, alpha=1e-2, beta=0.75, bias=2.0), {"x": x}) < TOL


def test_dropout_mask_output_in_inference() -> None:
    x = rand(2, 3, seed=31)
    assert max_error(single_node("Dropout", {"x": x}, 13, outputs=2), {"x": x}) == 0
