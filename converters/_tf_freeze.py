"""tf2onnx on a function whose captured tensors are all frozen into constants.

``tf2onnx.convert.from_function`` freezes a function's *variables*, but a model restored from a SavedModel
can also capture plain tensors (a Keras layer that built constant tensors eagerly, e.g. basic-pitch's
constant-Q transform): tf2onnx leaves those as extra graph inputs (``model_1/cq_t2010v2_1/6540:0``) that
no feed provides, and ONNX Runtime then fails with "Required inputs ... are missing from input feed".
:func:`convert_frozen` freezes the variables, turns every remaining captured tensor into a ``Const``
node holding its value, and converts that graph def with the function's own input and output names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def extra_inputs(path: Path, expected: list[str]) -> list[str]:
    """Graph inputs of the ONNX file at ``path`` that are not among ``expected`` (dangling captures)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers and i.name not in expected]


def convert_frozen(function: Any, signature: list[Any], opset: int, output_path: Path) -> int:
    """Convert ``function`` with every capture frozen; returns how many captured tensors became constants."""
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = function.get_concrete_function(*signature)
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    captured = {internal.op.name: value for value, internal in zip(concrete.captured_inputs, concrete.graph.internal_captures)
                if internal.dtype != tf.dtypes.resource}
    for node in graph_def.node:
        if node.name in captured:
            value = captured[node.name].numpy()
            node.op = "Const"
            node.ClearField("input")
            for key in list(node.attr):
                del node.attr[key]
            node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    captured_names = {f"{name}:0" for name in captured}
    inputs = [t.name for t in frozen.inputs if t.dtype != tf.dtypes.resource and t.name not in captured_names]
    outputs = [t.name for t in frozen.outputs if t.dtype != tf.dtypes.resource]
    renames = tf2onnx.convert.tensor_names_from_structed(concrete, inputs, outputs)
    tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=opset,
                                   tensors_to_rename=renames, output_path=str(output_path))
    return len(captured)
