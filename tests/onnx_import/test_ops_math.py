"""Element-wise, matrix and normalization handlers against ONNX Runtime on one-node graphs, across opsets."""
from __future__ import annotations

import numpy as np
import pytest

from onnx_graphs import max_error, rand, single_node

TOL = 1e-4


@pytest.mark.parametrize("opset", [7, 13, 18])
@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"])
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3))])
def test_binary_broadcasting(op_type: str, opset: int, shapes) -> None:
    a, b = rand(*shapes[0], seed=1), rand(*shapes[1], seed=2)
    if op_type == "Pow":
        a = np.abs(a) + 0.5
    if op_type in ("Max", "Min") and opset < 8:
        opset = 8
    model = single_node(op_type, {"a": a, "b": b}, opset)
    assert max_error(model, {"a": a, "b": b}) < TOL


@pytest.mark.parametrize("op_type", ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"])
def test_comparisons(op_type: str) -> None:
    a = np.round(rand(2, 3, 4, seed=3))
    b = np.round(rand(3, 1, seed=4))
    model = single_node(op_type, {"a": a, "b": b}, 13)
    assert max_error(model, {"a": a, "b": b}) == 0


@pytest.mark.parametrize("op_type", ["And", "Or", "Xor"])
def test_logic(op_type: str) -> None:
    a, b = rand(2, 3, seed=5) > 0, rand(3, seed=6) > 0
    assert max_error(single_node(op_type, {"a": a, "b": b}, 13), {"a": a, "b": b}) == 0
    assert max_error(single_node("Not", {"a": a}, 13), {"a": a}) == 0


def test_where_broadcasts() -> None:
    c, x, y = rand(2, 1, 4, seed=7) > 0, rand(3, 4, seed=8), rand(2, 3, 1, seed=9)
    assert max_error(single_node("Where", {"c": c, "x": x, "y": y}, 16), {"c": c, "x": x, "y": y}) == 0


def test_integer_div_truncates_like_onnx() -> None:
    a = np.array([7, -7, 9, -9], dtype=np.int64)
    b = np.array([2, 2, -4, -4], dtype=np.int64)
    assert max_error(single_node("Div", {"a": a, "b": b}, 13), {"a": a, "b": b}) == 0


@pytest.mark.parametrize("op_type", ["Sqrt", "Exp", "Log", "Erf", "Neg", "Abs", "Reciprocal", "Relu", "Sigmoid", "Tanh",
                                     "Softplus", "Floor", "Ceil"])
@pytest.mark.parametrize("opset", [9, 13])
def test_unary(op_type: str, opset: int) -> None:
    x = rand(2, 3, 5, seed=10)
    if op_type in ("Sqrt", "Log", "Reciprocal"):
        x = np.abs(x) + 0.1
    assert max_error(single_node(op_type, {"x": x}, opset), {"x": x}) < TOL


@pytest.mark.parametrize("op_type,attrs,opset", [
    ("LeakyRelu", {"alpha": 0.2}, 6), ("LeakyRelu", {}, 16), ("Elu", {"alpha": 0.7}, 6), ("HardSigmoid", {}, 6),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 6), ("HardSwish", {}, 14), ("Gelu", {}, 20),
    ("Gelu", {"approximate": "tanh"}, 20),
])
def test_activations(op_type: str, attrs: dict, opset: int) -> None:
    x = rand(2, 4, 3, seed=11) * 4
    assert max_error(single_node(op_type, {"x": x}, opset, **attrs), {"x": x}) < TOL


@pytest.mark.parametrize("slope_shape", [(1,), (4, 1, 1), (4, 5, 5)])
def test_prelu_broadcasts_the_slope(slope_shape) -> None:
    x = rand(2, 4, 5, 5, seed=12)
    model = single_node("PRelu", {"x": x}, 9, constants={"s": rand(*slope_shape, seed=13)})
    assert max_error(model, {"x": x}) < TOL


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, -1), (11, 2), (13, 1), (13, -1), (13, 0)])
def test_softmax_axis_semantics(op_type: str, opset: int, axis: int) -> None:
    x = rand(2, 3, 4, seed=14)
    assert max_error(single_node(op_type, {"x": x}, opset, axis=axis), {"x": x}) < TOL


def test_softmax_opset11_coerces_to_2d() -> None:
    """Opset < 13 normalizes over every axis from ``axis`` on (flattened), not along one axis."""
    x = rand(2, 3, 4, seed=15)
    model = single_node("Softmax", {"x": x}, 11, axis=1)
    from onnx_graphs import run_ort

    result = run_ort(model, {"x": x})[0]
    assert abs(result[0].sum() - 1.0) < 1e-5  # the whole [3, 4] block sums to one
    assert max_error(model, {"x": x}) < TOL


@pytest.mark.parametrize("opset,attrs,inputs", [
    (6, {"min": -0.5, "max": 0.5}, {}), (6, {"min": 0.0}, {}), (11, {}, {"lo": np.float32(-0.3), "hi": np.float32(0.4)}),
    (13, {}, {"lo": np.float32(0.0)}), (13, {}, {}),
])
def test_clip_attribute_and_input_forms(opset: int, attrs: dict, inputs: dict) -> None:
    x = rand(3, 4, seed=16)
    order = ["x", *inputs] if inputs else None
    model = single_node("Clip", {"x": x}, opset, constants=inputs, order=order, **attrs)
    assert max_error(model, {"x": x}) < TOL


@pytest.mark.parametrize("to", [6, 7, 9, 10, 1])
def test_cast(to: int) -> None:
    x = rand(3, 4, seed=17) * 5
    assert max_error(single_node("Cast", {"x": x}, 13, to=to), {"x": x}) < 1e-2


@pytest.mark.parametrize("trans_a,trans_b,alpha,beta,c_shape", [
    (0, 0, 1.0, 1.0, (5,)), (0, 1, 0.5, 2.0, (1, 5)), (1, 0, 1.0, 1.0, (3, 5)), (1, 1, 2.0, 0.5, None), (0, 0, 1.0, 1.0, (1,)),
])
def test_gemm(trans_a: int, trans_b: int, alpha: float, beta: float, c_shape) -> None:
    a = rand(*((4, 3) if trans_a else (3, 4)), seed=18)
    w = rand(*((5, 4) if trans_b else (4, 5)), seed=19)
    constants = {"w": w, **({"c": rand(*c_shape, seed=20)} if c_shape else {})}
    model = single_node("Gemm", {"a": a}, 13, constants=constants, transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)
    assert max_error(model, {"a": a}) < TOL


@pytest.mark.parametrize("a_shape,b_shape,const", [((3, 4), (4, 5), True), ((2, 3, 4), (4, 5), True),
                                                    ((2, 3, 4), (2, 4, 5), False), ((4,), (4, 5), True), ((2, 1, 3, 4), (5, 4, 2), False)])
def test_matmul(a_shape, b_shape, const: bool) -> None:
    a, b = rand(*a_shape, seed=21), rand(*b_shape, seed=22)
    if const:
        model, feed = single_node("MatMul", {"a": a}, 13, constants={"b": b}), {"a": a}
    else:
        model, feed = single_node("MatMul", {"a": a, "b": b}, 13), {"a": a, "b": b}
    assert max_error(model, feed) < TOL


@pytest.mark.parametrize("equation,shapes", [("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij->ji", [(3, 4)]),
                                             ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]), ("i,i->", [(4,), (4,)])])
def test_einsum(equation: str, shapes) -> None:
    feed = {f"x{i}": rand(*s, seed=23 + i) for i, s in enumerate(shapes)}
    assert max_error(single_node("Einsum", feed, 12, equation=equation), feed) < TOL


@pytest.mark.parametrize("opset", [9, 14, 15])
def test_batch_norm(opset: int) -> None:
    x = rand(2, 3, 4, 4, seed=30)
    constants = {"s": rand(3, seed=31), "b": rand(3, seed=32), "m": rand(3, seed=33), "v": np.abs(rand(3, seed=34)) + 0.5}
    model = single_node("BatchNormalization", {"x": x}, opset, constants=constants, epsilon=1e-3)
    assert max_error(model, {"x": x}) < TOL


def test_instance_norm() -> None:
    x = rand(2, 3, 5, 5, seed=35)
    model = single_node("InstanceNormalization", {"x": x}, 6, constants={"s": rand(3, seed=36), "b": rand(3, seed=37)})
    assert max_error(model, {"x": x}) < TOL


@pytest.mark.parametrize("axis,scale_shape", [(-1, (6,)), (2, (5, 6)), (1, (4, 5, 6)), (-2, (1, 6))])
def test_layer_norm(axis: int, scale_shape) -> None:
    x = rand(2, 4, 5, 6, seed=38)
    constants = {"s": rand(*scale_shape, seed=39), "b": rand(*scale_shape, seed=40)}
    model = single_node("LayerNormalization", {"x": x}, 17, constants=constants, axis=axis, epsilon=1e-5)
    assert max_error(model, {"x": x}) < TOL


@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
                                     "ReduceSumSquare"])
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([-1, 0], 0), (None, 1)])
def test_reductions_attribute_and_input_axes(op_type: str, opset: int, axes, keepdims: int) -> None:
    x = rand(2, 3, 4, seed=41)
    input_axes = opset >= (13 if op_type == "ReduceSum" else 18)
    if axes is not None and input_axes:
        model = single_node(op_type, {"x": x}, opset, constants={"axes": np.array(axes, dtype=np.int64)}, keepdims=keepdims)
    elif axes is not None:
        model = single_node(op_type, {"x": x}, opset, axes=axes, keepdims=keepdims)
    else:
        model = single_node(op_type, {"x": x}, opset, keepdims=keepdims)
    assert max_error(model, {"x": x}) < TOL


def test_reduce_noop_with_empty_axes() -> None:
    x = rand(2, 3, seed=42)
    model = single_node("ReduceMean", {"x": x}, 18, noop_with_empty_axes=1)
    assert max_error(model, {"x": x}) == 0
