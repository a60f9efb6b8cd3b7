"""Small real ONNX graphs for the graph view's tests, written with onnx.helper."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def div_chain(path: Path) -> Path:
    """x -> Conv -> Relu -> Div (by 2) -> Conv -> Add(Relu's output) -> y: five ops, one the Edge TPU lacks (DIV)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array((rng.standard_normal((4, c, 3, 3)) * 0.2).astype(np.float32), f"w{i}")
               for i, c in enumerate((3, 4))]
    weights.append(numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"))
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
             helper.make_node("Div", ["r0", "two"], ["d0"], name="div0"),
             helper.make_node("Conv", ["d0", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c1", "r0"], ["y"], name="add0")]
    graph = helper.make_graph(nodes, "div_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def strict_profile(path: Path) -> Path:
    """A device profile with no CPU fallback whose accelerator runs only Conv, Relu and Add in ONNX."""
    path.write_text("name: strict-npu\ndescription: an NPU without CPU fallback (test)\ndevice_class: npu\n"
                    "formats: [onnx]\nprecision: fp32\ncpu_fallback: false\nops:\n  onnx: [Conv, Relu, Add]\n")
    return path
