"""input_values: an input fixed to a constant is folded into the ONNX graph, its If branches inlined."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgekit.errors import ConversionError, InvalidOptionError
from edgekit.sources.onnx_fold import fold_inputs
from tests.fold_models import build

ort = pytest.importorskip("onnxruntime")


def _feeds(count: int, seed: int = 0, sr: int | None = None) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {"input": rng.standard_normal((1, 512)).astype(np.float32) * 0.5,
                "state": np.tanh(rng.standard_normal((1, 32))).astype(np.float32)}
        if sr is not None:
            feed["sr"] = np.array(sr, np.int64)
        feeds.append(feed)
    return feeds


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


@pytest.mark.parametrize("sr", [16000, 8000])
def test_folding_removes_the_input_and_the_if_and_keeps_the_outputs(sr):
    model = build()
    folded, notes = fold_inputs(model, {"sr": sr})
    assert [i.name for i in folded.graph.input] == ["input", "state"]
    assert "If" not in {n.op_type for n in folded.graph.node}
    assert notes == [f"input 'sr' fixed to {sr} and folded into the graph", "1 node(s) computed once, 1 If branch(es) inlined"]
    branch = "sr16k" if sr == 16000 else "sr8k"
    weights = {init.name for init in folded.graph.initializer}
    assert {f"{branch}_conv_w", f"{branch}_proj_w"} <= weights  # the taken branch's weights are graph weights now
    assert not any(name.startswith("sr8k" if sr == 16000 else "sr16k") for name in weights)
    for feed in _feeds(4, sr=sr):
        want = _run(model, feed)
        got = _run(folded, {k: v for k, v in feed.items() if k != "sr"})
        assert max(float(np.abs(a - b).max()) for a, b in zip(want, got)) == 0.0


def test_a_condition_that_depends_on_the_data_names_the_blocking_node():
    with pytest.raises(ConversionError) as info:
        fold_inputs(build(data_dependent=True), {"sr": 16000})
    assert "cannot fold If node 'sr_switch'" in info.value.message and "depends on sr" in info.value.message


def test_unknown_input_and_wrong_shape_are_option_errors():
    with pytest.raises(InvalidOptionError, match="'rate', which is not an input"):
        fold_inputs(build(), {"rate": 16000})
    with pytest.raises(InvalidOptionError, match=r"shape \[2\]"):
        fold_inputs(build(), {"sr": [16000, 8000]})


@pytest.mark.slow  # OpenVINO conversion and NNCF int8 of a small model: about 20 s
def test_openvino_fp32_and_int8_with_a_fixed_sample_rate(tmp_path):
    from edgekit import convert

    path = tmp_path / "vad_like.onnx"
    onnx.save(build(), str(path))
    calibration = _feeds(64, seed=1)
    events = []
    build_ = convert(str(path), formats=["openvino"], precision=["fp32", "int8"], input_values={"sr": 16000},
                     calibration_data=calibration, validation_data=_feeds(32, seed=2, sr=16000),
                     output_dir=tmp_path / "out", states={"state": "stateN"}, progress=events.append)
    statistics = [e.message for e in events if e.message.startswith("NNCF int8 statistics")]
    assert statistics[0] == "NNCF int8 statistics: sample 1/64, estimating the time left"
    assert statistics[1].startswith("NNCF int8 statistics: sample 2/64, about ")  # from the one sample consumed
    assert "sample 64/64, about 0 s left" in statistics[63]
    assert not build_.failures, build_.failures
    by_precision = {a.precision: a for a in build_.artifacts}
    for precision, artifact in by_precision.items():
        assert artifact.passed, (precision, artifact.validation)
        assert [s.name for s in artifact.inputs] == ["input", "state"]
    fp32, int8_ = by_precision["fp32"].validation, by_precision["int8"].validation
    print(f"fp32: {fp32.cosine} {fp32.max_abs_error}; int8: {int8_.cosine} weights int8 {int8_.int8_weight_fraction}")
    assert fp32.samples == 32 and fp32.cosine > 0.99999
    assert int8_.cosine >= 0.98 and int8_.int8_weight_fraction > 0.9
    manifest = json.loads((tmp_path / "out" / "edgekit-manifest.json").read_text())
    assert manifest["config"]["plan"]["options"]["input_values"] == {"sr": 16000}
    assert "input 'sr' fixed to 16000 and folded into the graph" in manifest["config"]["run"]["folded_inputs"]
    import openvino as ov

    int8 = ov.Core().read_model(by_precision["int8"].path)
    quantized = {tuple(op.get_shape()) for op in int8.get_ops() if op.get_type_name() == "Constant"
                 and op.get_element_type() == ov.Type.i8}
    assert {(16, 1, 32), (32, 16)} <= quantized  # the 16 kHz branch's conv and projection weights, now int8


def _stale_output_model() -> onnx.ModelProto:
    """A conv net with dynamic H, W whose output was declared with the export-time size 32x32."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "stale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32, 32])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_fp32_onnx_with_fixed_input_shapes_declares_the_new_output_shapes(tmp_path, capfd):
    from edgekit.sources import load_source
    from edgekit.sources.onnx import save_copy

    path = tmp_path / "stale.onnx"
    onnx.save(_stale_output_model(), str(path))
    staged = save_copy(load_source(path), tmp_path / "copy", {"x": (1, 1, 16, 16)})
    model = onnx.load(str(staged))
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [1, 4, 16, 16]
    capfd.readouterr()
    session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])  # default log level: warnings
    (y,) = session.run(None, {"x": np.zeros((1, 1, 16, 16), np.float32)})
    assert y.shape == (1, 4, 16, 16)
    assert "does not match actual shape" not in capfd.readouterr().err
    stale = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    stale.run(None, {"x": np.zeros((1, 1, 16, 16), np.float32)})
    assert "does not match actual shape" in capfd.readouterr().err  # the source file itself does warn


@pytest.mark.slow  # ONNX Runtime static int8 of a small model: about 10 s
def test_onnx_int8_reports_calibration_progress_with_an_estimate(tmp_path):
    from edgekit import convert

    path = tmp_path / "vad_like.onnx"
    onnx.save(build(), str(path))
    events = []
    build_ = convert(str(path), formats=["onnx"], precision=["int8"], input_values={"sr": 16000},
                     calibration_data=_feeds(16, seed=1), validation_data=_feeds(16, seed=2, sr=16000),
                     output_dir=tmp_path / "out", progress=events.append)
    assert not build_.failures, build_.failures
    (artifact,) = build_.artifacts
    assert [s.name for s in artifact.inputs] == ["input", "state"] and artifact.validation.int8_weight_fraction > 0.9
    messages = [e.message for e in events if e.message.startswith("ONNX Runtime calibration")]
    assert messages[0].startswith("ONNX Runtime calibration: sample 1/16, estimating the time left")
    assert messages[1].startswith("ONNX Runtime calibration: sample 2/16, about ")
    assert messages[15].startswith("ONNX Runtime calibration: sample 16/16, about 0 s left")
