"""edgekit.weights: the fraction of weights stored as int8, counted in real ONNX, OpenVINO and TFLite files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InvalidOptionError, ModelFileError
from edgekit.weights import quantized_weight_fraction, weight_counts

pytestmark = pytest.mark.slow  # the tests here convert or train real models


@pytest.fixture(scope="module")
def onnx_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A two-layer MLP as fp32 ONNX, and the same model after ONNX Runtime static int8 quantization."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(16, 32)).astype(np.float32), rng.normal(size=32).astype(np.float32)
    w2 = rng.normal(size=(32, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
         helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")],
    )
    folder = tmp_path_factory.mktemp("weights")
    fp32, int8 = folder / "mlp.onnx", folder / "mlp_int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"x": rng.normal(size=(1, 16)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ)
    return fp32, int8


def test_onnx_fp32_has_no_int8_weights_and_counts_every_parameter(onnx_pair) -> None:
    counts = weight_counts(onnx_pair[0], "onnx")
    assert counts == {"float32": 16 * 32 + 32 + 32 * 4}
    assert quantized_weight_fraction(onnx_pair[0], "onnx") == 0.0


def test_onnx_static_int8_holds_the_matrices_as_int8(onnx_pair) -> None:
    counts = weight_counts(onnx_pair[1], "onnx")
    assert counts["int8"] == 16 * 32 + 32 + 32 * 4  # both matrices and the Add's constant
    assert counts["float32"] == 0  # per-tensor scales are scalars, not weights
    assert quantized_weight_fraction(onnx_pair[1], "onnx") == 1.0


def test_openvino_ir_counts_constants_by_element_type(onnx_pair, tmp_path: Path) -> None:
    import openvino as ov

    xml = tmp_path / "mlp.xml"
    ov.save_model(ov.convert_model(str(onnx_pair[0])), str(xml), compress_to_fp16=False)
    assert quantized_weight_fraction(xml, "openvino") == 0.0
    assert weight_counts(xml, "openvino")["float32"] == 16 * 32 + 32 + 32 * 4
    half = tmp_path / "mlp_fp16.xml"
    ov.save_model(ov.convert_model(str(onnx_pair[0])), str(half), compress_to_fp16=True)
    assert weight_counts(half, "openvino")["float16"] >= 16 * 32 + 32 * 4
    quantized = tmp_path / "mlp_int8.xml"
    ov.save_model(ov.convert_model(str(onnx_pair[1])), str(quantized), compress_to_fp16=False)
    assert quantized_weight_fraction(quantized, "openvino") > 0.9
    assert quantized_weight_fraction(quantized.with_suffix(".bin"), "openvino") > 0.9  # the .bin names its IR too


def test_unknown_format_and_unreadable_ir_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="unknown artifact format 'caffe'"):
        quantized_weight_fraction(tmp_path / "m.bin", "caffe")
    broken = tmp_path / "broken.xml"
    broken.write_text("<net><layers>")
    with pytest.raises(ModelFileError, match="broken.xml is not a readable OpenVINO IR .xml"):
        quantized_weight_fraction(broken, "openvino")


def test_tflite_constant_tensors_by_type(tmp_path: Path) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(1)
    model = tf.keras.Sequential([tf.keras.Input((16,)), tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(4)])
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])  # no all-zero biases
    fp32, int8 = tmp_path / "m.tflite", tmp_path / "m_int8.tflite"
    fp32.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(size=(1, 16)).astype(np.float32)] for _ in range(8))
    int8.write_bytes(converter.convert())
    assert weight_counts(fp32, "tflite")["float32"] == 16 * 32 + 32 + 32 * 4 + 4
    assert quantized_weight_fraction(fp32, "tflite") == 0.0
    counts = weight_counts(int8, "tflite")
    assert counts["int8"] == 16 * 32 + 32 * 4 and counts["int32"] == 32 + 4 and counts["float32"] == 0  # int32 biases
    assert quantized_weight_fraction(int8, "tflite") == 1.0
