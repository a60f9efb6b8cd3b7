"""ONNX Runtime per-channel int8 of convolutions with one input channel (a grayscale or audio front end).

ONNX Runtime's QDQ quantizer was reported to crash on them ("The truth value of an array with more than one
element is ambiguous", qdq_quantizer.py); with onnxruntime 1.32 they quantize per channel and pass.
"""
from __future__ import annotations

import numpy as np
import pytest


def _model():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (1, 8, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.zeros(1, np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "single_channel", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.slow  # ONNX Runtime calibration and validation in a worker: about 15 s
def test_per_channel_int8_of_one_channel_convolutions_builds_and_passes(tmp_path) -> None:
    import edgekit

    data = np.random.default_rng(1).normal(size=(64, 1, 16, 16)).astype(np.float32)
    build = edgekit.convert(_model(), formats=["onnx"], precision="int8", calibration_data=data[:32],
                            validation_data=data[32:], output_dir=tmp_path / "out", rescue=False)
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert artifact.passed and artifact.validation.cosine > 0.99, artifact.validation
    assert artifact.validation.int8_weight_fraction > 0.9
    assert any("per-channel" in note for note in artifact.notes), artifact.notes
