"""Tiny real artifacts for the profiling and agent tests: a least-squares digits classifier as ONNX and
OpenVINO IR, a labelled .npz and a build folder with a manifest listing both."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def make_artifacts(folder: Path) -> dict[str, Any]:
    import onnx
    import openvino as ov
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    y = digits.target.astype(np.int64)
    design = np.c_[x, np.ones(len(x))]
    weights = np.linalg.lstsq(design, np.eye(10)[y], rcond=None)[0].astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"])],
        "digits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(weights[:-1], "w"), numpy_helper.from_array(weights[-1], "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    build = folder / "build"
    build.mkdir()
    onnx.save(model, str(build / "digits.onnx"))
    ov.save_model(ov.convert_model(str(build / "digits.onnx")), str(build / "digits.xml"))
    manifest = {"schema_version": 1, "artifacts": [
        {"format": "onnx", "precision": "fp32", "path": str(build / "digits.onnx"), "files": [str(build / "digits.onnx")]},
        {"format": "openvino", "precision": "fp32", "path": str(build / "digits.xml"),
         "files": [str(build / "digits.xml"), str(build / "digits.bin")]},
    ]}
    (build / "edgekit-manifest.json").write_text(json.dumps(manifest))
    np.savez(folder / "digits_test.npz", x=x[:200], y=y[:200])
    logits = np.c_[x[:200], np.ones(200)] @ weights
    expected = float(np.mean(np.argmax(logits, axis=1) == y[:200]))
    return {"build": build, "onnx": build / "digits.onnx", "openvino": build / "digits.xml",
            "dataset": folder / "digits_test.npz", "expected_accuracy": expected}
