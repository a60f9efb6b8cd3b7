"""The int8 share of compute counts recurrent layers: ONNX Runtime's static quantizer leaves an LSTM float, and
the share (and the rescue's note) must say so instead of reporting 100% int8."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.rescue_cost import float_recurrent_share, int8_compute_share

STEPS, FEATURES, HIDDEN = 5, 8, 4
MATMUL_MACS = FEATURES * FEATURES * STEPS  # 320
LSTM_MACS = (4 * HIDDEN * FEATURES + 4 * HIDDEN * HIDDEN) * STEPS  # 960


def _lstm_onnx(path: Path) -> Path:
    """MatMul (8x8) on (1, 5, 8), then an LSTM (hidden 4) over its 5 steps."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
             for name, shape in (("w_mm", (FEATURES, FEATURES)), ("W", (1, 4 * HIDDEN, FEATURES)),
                                 ("R", (1, 4 * HIDDEN, HIDDEN)))]
    nodes = [helper.make_node("MatMul", ["x", "w_mm"], ["h"], name="mm"),
             helper.make_node("Transpose", ["h"], ["h_t"], perm=[1, 0, 2], name="to_seq_major"),
             helper.make_node("LSTM", ["h_t", "W", "R"], ["y", "y_h"], hidden_size=HIDDEN, name="lstm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, STEPS, FEATURES])],
                              [helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [1, 1, HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_lstm_macs_are_counted_per_step_and_a_float_model_has_no_int8_share(tmp_path: Path) -> None:
    model = _lstm_onnx(tmp_path / "lstm.onnx")
    assert int8_compute_share(model, "onnx") == 0.0
    assert float_recurrent_share(model, "onnx") == {"LSTM": pytest.approx(LSTM_MACS / (LSTM_MACS + MATMUL_MACS), abs=1e-4)}


def test_ort_static_int8_leaves_the_lstm_float_and_the_share_says_so(tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"x": np.random.default_rng(i).normal(size=(1, STEPS, FEATURES)).astype(np.float32)}
                               for i in range(8)])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    source, quantized = _lstm_onnx(tmp_path / "lstm.onnx"), tmp_path / "lstm_int8.onnx"
    quantize_static(str(source), str(quantized), Reader(), quant_format=QuantFormat.QDQ)
    assert int8_compute_share(quantized, "onnx") == pytest.approx(MATMUL_MACS / (LSTM_MACS + MATMUL_MACS), abs=1e-4)  # 0.25
    assert float_recurrent_share(quantized, "onnx") == {"LSTM": 0.75}


@pytest.mark.slow
def test_openvino_counts_its_lstm_sequence_like_onnx(tmp_path: Path) -> None:
    import openvino as ov

    ov.save_model(ov.convert_model(str(_lstm_onnx(tmp_path / "lstm.onnx"))), str(tmp_path / "lstm.xml"))
    assert float_recurrent_share(tmp_path / "lstm.xml", "openvino") == {"LSTMSequence": 0.75}
    assert int8_compute_share(tmp_path / "lstm.xml", "openvino") == 0.0


@pytest.mark.slow
def test_the_rescue_record_names_the_recurrent_layers_plain_int8_leaves_float(tmp_path: Path) -> None:
    import edgekit
    from edgekit.manifest import read_manifest

    data = np.random.default_rng(1).normal(size=(48, STEPS, FEATURES)).astype(np.float32)
    build = edgekit.convert(str(_lstm_onnx(tmp_path / "lstm.onnx")), formats=["onnx"], precision="int8",
                            calibration_data=data[:32], validation_data=data[32:], output_dir=tmp_path / "out",
                            accuracy_target={"cosine": 0.9999999})
    record = read_manifest(tmp_path / "out")["config"]["run"]["rescue"]["onnx/int8"]
    assert record["curve"][0]["int8_compute_share"] == 0.25
    assert ("75% of the multiply-accumulates are in recurrent layers (LSTM) that stay float in every int8 build of "
            "this route: ONNX Runtime's static (QDQ) quantizer has no int8 recurrent layers") in " ".join(record["notes"])
    assert build.artifacts[0].validation.samples == 16
