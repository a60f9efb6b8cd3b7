"""Shape and data-movement handlers against ONNX Runtime; shape subgraphs fold to constants; refusals by name."""
from __future__ import annotations

import time

import numpy as np
import pytest
from onnx import TensorProto, helper

from onnx_graphs import graph_model, max_error, rand, single_node

I64 = np.int64


@pytest.mark.parametrize("target,allowzero", [([0, -1], 0), ([-1, 4], 0), ([2, 0, 2, 2], 0), ([6, 4], 1), ([24], 0)])
def test_reshape(target, allowzero: int) -> None:
    x = rand(2, 3, 4, seed=1)
    model = single_node("Reshape", {"x": x}, 14, constants={"s": np.array(target, dtype=I64)}, allowzero=allowzero)
    assert max_error(model, {"x": x}) == 0


@pytest.mark.parametrize("perm", [None, [0, 2, 1], [2, 0, 1]])
def test_transpose(perm) -> None:
    x = rand(2, 3, 4, seed=2)
    attrs = {"perm": perm} if perm else {}
    assert max_error(single_node("Transpose", {"x": x}, 13, **attrs), {"x": x}) == 0


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 3])
def test_flatten(axis: int) -> None:
    x = rand(2, 3, 4, seed=3)
    axis = min(axis, 3)
    assert max_error(single_node("Flatten", {"x": x}, 13, axis=axis), {"x": x}) == 0


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[1], [-1, 1], None])
def test_squeeze_unsqueeze(opset: int, axes) -> None:
    x = rand(2, 1, 3, 1, seed=4)
    if opset >= 13:
        constants = {"axes": np.array(axes, dtype=I64)} if axes else {}
        squeeze = single_node("Squeeze", {"x": x}, opset, constants=constants)
    else:
        squeeze = single_node("Squeeze", {"x": x}, opset, **({"axes": axes} if axes else {}))
    assert max_error(squeeze, {"x": x}) == 0
    un_axes = axes or [0]
    if opset >= 13:
        unsqueeze = single_node("Unsqueeze", {"x": x}, opset, constants={"axes": np.array(un_axes, dtype=I64)})
    else:
        unsqueeze = single_node("Unsqueeze", {"x": x}, opset, axes=un_axes)
    assert max_error(unsqueeze, {"x": x}) == 0


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_with_constant_and_empty(axis: int) -> None:
    a, b = rand(2, 3, 4, seed=5), rand(2, 3, 4, seed=6)
    model = single_node("Concat", {"a": a, "b": b}, 13, constants={"c": rand(2, 3, 4, seed=7)}, axis=axis)
    assert max_error(model, {"a": a, "b": b}) == 0


@pytest.mark.parametrize("opset,form", [(11, "attr"), (11, "equal"), (13, "input"), (13, "equal"), (18, "num_outputs"),
                                        (18, "input")])
def test_split(opset: int, form: str) -> None:
    x = rand(2, 7, 3, seed=8)
    if form == "attr":
        model = single_node("Split", {"x": x}, opset, outputs=3, axis=1, split=[2, 4, 1])
    elif form == "input":
        model = single_node("Split", {"x": x}, opset, constants={"s": np.array([3, 4], dtype=I64)}, outputs=2, axis=-2)
    elif form == "num_outputs":
        model = single_node("Split", {"x": x}, opset, outputs=3, axis=1, num_outputs=3)
    else:
        x = rand(2, 6, 3, seed=9)
        model = single_node("Split", {"x": x}, opset, outputs=3, axis=1)
    assert max_error(model, {"x": x}) == 0


_INT_MAX = np.iinfo(np.int64).max


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [3], [1], None), ([0, -3], [_INT_MAX, -1], [0, 2], None), ([-1], [-_INT_MAX], [1], [-1]),
    ([0, 1], [10, 4], [2, 1], [2, 1]), ([4], [0], [2], [-2]), ([0], [_INT_MAX], [-1], [3]),
])
def test_slice_inputs(starts, ends, axes, steps) -> None:
    x = rand(3, 4, 5, seed=10)
    constants = {"s": np.array(starts, dtype=I64), "e": np.array(ends, dtype=I64), "a": np.array(axes, dtype=I64)}
    if steps:
        constants["st"] = np.array(steps, dtype=I64)
    assert max_error(single_node("Slice", {"x": x}, 13, constants=constants), {"x": x}) == 0


def test_slice_opset1_attributes() -> None:
    x = rand(3, 4, 5, seed=11)
    assert max_error(single_node("Slice", {"x": x}, 1, starts=[1, 0], ends=[3, -1], axes=[0, 2]), {"x": x}) == 0


@pytest.mark.parametrize("axis,index", [(0, 1), (1, [0, -1, 2]), (-1, [[1, 0], [2, 3]]), (1, -2)])
def test_gather_constant_indices(axis: int, index) -> None:
    x = rand(3, 4, 5, seed=12)
    model = single_node("Gather", {"x": x}, 13, constants={"i": np.array(index, dtype=I64)}, axis=axis)
    assert max_error(model, {"x": x}) == 0


def test_gather_runtime_indices_embedding() -> None:
    ids = np.array([[0, 3, -1]], dtype=I64)
    model = single_node("Gather", {"ids": ids}, 13, constants={"table": rand(6, 4, seed=13)}, order=["table", "ids"])
    assert max_error(model, {"ids": ids}) == 0


@pytest.mark.parametrize("target", [[2, 3, 4], [3, 1], [1, 1, 1, 4]])
def test_expand(target) -> None:
    x = rand(3, 1, seed=14) if target != [1, 1, 1, 4] else rand(1, 4, seed=14)
    assert max_error(single_node("Expand", {"x": x}, 13, constants={"s": np.array(target, dtype=I64)}), {"x": x}) == 0


def test_tile() -> None:
    x = rand(2, 3, seed=15)
    assert max_error(single_node("Tile", {"x": x}, 13, constants={"r": np.array([2, 3], dtype=I64)}), {"x": x}) == 0


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("opset", [2, 11, 18])
def test_pad(mode: str, opset: int) -> None:
    x = rand(1, 2, 5, 6, seed=16)
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    if opset < 11:
        model = single_node("Pad", {"x": x}, opset, pads=pads, mode=mode, value=0.5 if mode == "constant" else 0.0)
    elif opset < 18:
        constants = {"p": np.array(pads, dtype=I64), "v": np.array(0.5, dtype=np.float32)}
        model = single_node("Pad", {"x": x}, opset, constants=constants, mode=mode)
    else:
        constants = {"p": np.array([1, 2, 2, 1], dtype=I64), "v": np.array(0.5, dtype=np.float32), "a": np.array([-2, -1], dtype=I64)}
        model = single_node("Pad", {"x": x}, opset, constants=constants, mode=mode)
    assert max_error(model, {"x": x}) == 0


def test_negative_pads_crop() -> None:
    x = rand(1, 2, 5, 6, seed=17)
    constants = {"p": np.array([0, 0, -1, 1, 0, 0, 1, -2], dtype=I64)}
    assert max_error(single_node("Pad", {"x": x}, 13, constants=constants), {"x": x}) == 0


def test_topk_argmax() -> None:
    x = rand(2, 7, seed=18)
    model = single_node("TopK", {"x": x}, 11, constants={"k": np.array([3], dtype=I64)}, outputs=2, axis=-1)
    assert max_error(model, {"x": x}) == 0
    assert max_error(single_node("ArgMax", {"x": x}, 13, axis=1, keepdims=0), {"x": x}) == 0


def test_shape_subgraph_folds_to_constants() -> None:
    """Shape -> Gather -> Concat -> ConstantOfShape -> Range -> Cast: all folded, the graph keeps the real work only."""
    x = rand(2, 3, 4, seed=19)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["flat"], axis=0),
        helper.make_node("Reshape", ["x", "flat"], ["flattened"]),
        helper.make_node("Shape", ["flattened"], ["fshape"], start=1),
        helper.make_node("ConstantOfShape", ["fshape"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("Size", ["x"], ["count"]),
        helper.make_node("Cast", ["count"], ["countf"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["start", "limit", "delta"], ["ramp"]),
        helper.make_node("Cast", ["ramp"], ["rampf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["flattened", "ones"], ["m"]),
        helper.make_node("Add", ["m", "rampf"], ["a"]),
        helper.make_node("Div", ["a", "countf"], ["y"]),
    ]
    constants = {"zero": np.array(0, dtype=I64), "axes0": np.array([0], dtype=I64), "minus1": np.array([-1], dtype=I64),
                 "start": np.array(0, dtype=I64), "limit": np.array(12, dtype=I64), "delta": np.array(1, dtype=I64)}
    model = graph_model(nodes, {"x": x}, ["y"], 15, constants)
    assert max_error(model, {"x": x}, export=True) < 1e-6
    from edgekit.sources.onnx_import import import_onnx

    module = import_onnx(model).module
    ops = [str(n.target) for n in module.graph.nodes if n.op == "call_function"]
    assert len(ops) == 4, ops  # reshape, mul, add, div: every shape op folded away


def test_if_with_constant_condition_is_inlined() -> None:
    x = rand(2, 3, seed=20)
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ReduceProd", ["s"], ["n"], keepdims=0),
             helper.make_node("Greater", ["n", "five"], ["c"]), helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    model = graph_model(nodes, {"x": x}, ["y"], 13, {"five": np.array(5, dtype=I64)})
    assert max_error(model, {"x": x}, export=True) == 0


def test_if_with_runtime_condition_is_refused_by_name() -> None:
    x = rand(2, 3, seed=21)
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then, else_branch=other)]
    model = graph_model(nodes, {"x": x}, ["y"], 13, {"zero": np.array(0, dtype=np.float32)})
    from edgekit.sources.onnx_import import UnsupportedOnnxError, import_onnx

    with pytest.raises(UnsupportedOnnxError, match=r"If node 'branch' \(opset 13\): the If condition is computed at run time"):
        import_onnx(model)


@pytest.mark.parametrize("model_args,pattern", [
    (("NonMaxSuppression", 11, {}), r"NonMaxSuppression node 'nonmaxsuppression_node' \(opset 11\): the ONNX op NonMaxSuppression is not supported"),
    (("Resize", 13, {"mode": "cubic"}), r"Resize node 'resize_node' \(opset 13\): mode 'cubic' is not supported"),
    (("MaxPool", 12, {"kernel_shape": [2, 2], "storage_order": 1}), r"storage_order=1 is not supported"),
    (("Relu", 5, {}), r"Relu node 'relu_node' \(opset 5\): opset 5 is outside the supported range 6-24"),
    (("Gelu", 20, {"approximate": "erf"}), r"Gelu node 'gelu_node' \(opset 20\): approximate must be none or tanh"),
])
def test_unsupported_is_refused_by_name_without_torch(model_args, pattern: str) -> None:
    op_type, opset, attrs = model_args
    x = rand(1, 1, 4, 4, seed=22)
    model = single_node(op_type, {"x": x}, opset, **attrs) if op_type != "Resize" else single_node(
        op_type, {"x": x}, opset, constants={"r": np.array([], np.float32), "s": np.array([1, 1, 2, 2], np.float32)}, **attrs)
    from edgekit.sources.onnx_import import UnsupportedOnnxError, check_support

    started = time.perf_counter()
    with pytest.raises(UnsupportedOnnxError, match=pattern):
        check_support(model)
    assert time.perf_counter() - started < 1.0


def test_dynamic_input_needs_a_shape() -> None:
    from onnx import helper as h

    from edgekit.errors import ConversionError
    from edgekit.sources.onnx_import import import_onnx

    graph = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [h.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    with pytest.raises(ConversionError, match=r"ONNX input 'x' has shape \[None, 3\]"):
        import_onnx(model)
    assert list(import_onnx(model, {"x": (5, 3)}).inputs[0].shape) == [5, 3]
