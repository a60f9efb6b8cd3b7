"""Small ONNX graphs made with onnx.helper, and the parity check of the importer against ONNX Runtime."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def single_node(op_type: str, inputs: Mapping[str, np.ndarray], opset: int, *, constants: Mapping[str, Any] | None = None,
                outputs: int | Sequence[str] = 1, **attrs: Any) -> Any:
    """A model of one ``op_type`` node: ``inputs`` are graph inputs (by example), ``constants`` initializers.

    The node's input order is ``inputs`` then ``constants`` unless ``order=[...]`` names it ('' = omitted).
    """
    from onnx import helper, numpy_helper

    order = attrs.pop("order", None)
    constants = dict(constants or {})
    names = list(order) if order is not None else [*inputs, *constants]
    out_names = [f"y{i}" for i in range(outputs)] if isinstance(outputs, int) else list(outputs)
    node = helper.make_node(op_type, names, out_names, name=f"{op_type.lower()}_node", **attrs)
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in inputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in constants.items()]
    graph = helper.make_graph([node], op_type.lower(), graph_inputs, [], inits)
    return _typed_outputs(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8),
                          [n for n in out_names if n])


def _typed_outputs(model: Any, names: Sequence[str]) -> Any:
    """``model`` with graph outputs ``names`` typed by ONNX shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    types = {v.name: v for v in inferred.graph.value_info}
    for name in names:
        model.graph.output.append(types[name] if name in types else onnx.helper.make_value_info(name, onnx.TypeProto()))
    return model


def graph_model(nodes: list[Any], inputs: Mapping[str, np.ndarray], outputs: Sequence[str], opset: int,
                constants: Mapping[str, Any] | None = None) -> Any:
    from onnx import helper, numpy_helper

    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in inputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (constants or {}).items()]
    graph = helper.make_graph(nodes, "model", graph_inputs, [], inits)
    return _typed_outputs(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), outputs)


def run_ort(model: Any, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(feed))


def max_error(model: Any, feed: Mapping[str, np.ndarray], *, export: bool = False) -> float:
    """Largest absolute difference between ONNX Runtime and the imported module over every output.

    With ``export`` the module is also captured with ``torch.export`` (non-strict) and that program is compared.
    """
    import torch

    from edgekit.sources.onnx_import import import_onnx

    imported = import_onnx(model)
    args = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in feed.values())
    module = imported.module
    if export:
        module = torch.export.export(module, args, strict=False).module()
    with torch.no_grad():
        actual = module(*args)
    expected = run_ort(model, feed)
    assert len(actual) == len(expected)
    worst = 0.0
    for a, e in zip(actual, expected):
        a = a.numpy()
        assert a.shape == e.shape, (a.shape, e.shape)
        if e.dtype == bool or np.issubdtype(e.dtype, np.integer):
            worst = max(worst, float(np.abs(a.astype(np.int64) - e.astype(np.int64)).max(initial=0)))
        else:
            worst = max(worst, float(np.abs(a.astype(np.float64) - e).max(initial=0)))
    return worst


def rand(*shape: int, seed: int = 0, dtype: Any = np.float32) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(dtype)
