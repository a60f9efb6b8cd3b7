"""A small real ONNX classifier for the tune tests: random ReLU features of scikit-learn's digits and a
least-squares readout (about 97% top-1), with calibration and validation inputs as .npy files."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def make_mlp(folder: Path) -> dict[str, Path]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.5, (64, 48)).astype(np.float32)
    hidden = np.maximum(x @ w1, 0)
    w2 = np.linalg.lstsq(np.c_[hidden, np.ones(len(hidden))], np.eye(10)[digits.target], rcond=None)[0].astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["l0"]), helper.make_node("Add", ["l0", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 10])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2[:-1], "w2"),
                               numpy_helper.from_array(w2[-1], "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "mlp.onnx"))
    np.save(folder / "cal.npy", x[:300])
    np.save(folder / "val.npy", x[1500:])
    return {"model": folder / "mlp.onnx", "calibration": folder / "cal.npy", "validation": folder / "val.npy"}


def make_outlier_cnn(folder: Path, digits: tuple) -> dict[str, Path]:
    """The planted-outlier digits CNN (tests/debug_models.py) exported to an fp32 ONNX file, with calibration and
    validation inputs: ONNX Runtime's plain int8 ruins it, the int8 rescue fixes it with two layers in float."""
    from debug_models import outlier_classifier

    import edgekit

    x_train, x_test, y_train, _ = digits
    folder.mkdir(parents=True, exist_ok=True)
    build = edgekit.convert(outlier_classifier(x_train, y_train), formats="onnx", precision="fp32",
                            output_dir=folder / "fp32")
    np.save(folder / "cal.npy", x_train[:200])
    np.save(folder / "val.npy", x_test[:100])
    return {"model": Path(build.artifact("onnx", "fp32").path), "calibration": folder / "cal.npy",
            "validation": folder / "val.npy"}
