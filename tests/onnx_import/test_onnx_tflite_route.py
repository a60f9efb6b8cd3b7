"""The onnx->tflite route end to end: grouped models through litert-torch against ONNX Runtime, refusals by
name while the other formats build, NHWC boundary, profiles that prefer TFLite, and `edgekit check`."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import group_models
import edgekit


def _by_precision(build) -> dict:
    return {(a.format, a.precision): a for a in build.artifacts}


@pytest.mark.slow
def test_vision_model_fp32_and_int8_through_litert(tmp_path: Path) -> None:
    model, feed = group_models.vision()
    calibration = np.random.default_rng(0).standard_normal((32, 1, 3, 32, 32)).astype(np.float32)
    build = edgekit.convert(model, formats="tflite", precision=["fp32", "int8"], calibration_data=calibration[:16, 0],
                            validation_data=calibration[16:, 0], output_dir=tmp_path, isolate=False)
    assert not build.failures, build.failures
    fp32, int8 = _by_precision(build)[("tflite", "fp32")], _by_precision(build)[("tflite", "int8")]
    assert fp32.validation.status == "passed"
    for output in fp32.validation.outputs:
        assert output.cosine > 0.99999 and output.max_abs_error < 1e-4, output
    cosines = {o.name: o.cosine for o in int8.validation.outputs}
    assert cosines["probs"] > 0.98 and cosines["mask"] > 0.9, cosines  # random weights: the sigmoid mask is the hard one
    assert int8.inputs[0].dtype == "int8" and int8.size_bytes < fp32.size_bytes
    assert any("ONNX opset 18 imported by edgekit" in note for note in fp32.notes)


@pytest.mark.slow
def test_sequence_model_fp32_through_litert(tmp_path: Path) -> None:
    """LSTM (bidirectional, states), GRU, LayerNorm, Einsum, Gelu, Split/Slice, Where: every output in parity."""
    model, feed = group_models.sequence()
    build = edgekit.convert(model, formats="tflite", precision="fp32", validation_data=[feed] * 2, output_dir=tmp_path,
                            isolate=False)
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert artifact.validation.status == "passed"
    assert {o.name for o in artifact.validation.outputs} == {"score", "gh", "yh", "yc"}
    for output in artifact.validation.outputs:
        assert output.cosine > 0.9999 and output.max_abs_error < 1e-4, output


@pytest.mark.slow
def test_nhwc_layout_transposes_at_the_boundary(tmp_path: Path) -> None:
    model, feed = group_models.vision()
    build = edgekit.convert(model, formats="tflite", precision="fp32", layout="NHWC", output_dir=tmp_path, isolate=False)
    (artifact,) = build.artifacts
    assert artifact.validation.status == "passed" and artifact.validation.cosine > 0.99999
    assert [(i.name, i.shape, i.layout) for i in artifact.inputs] == [("x", (1, 32, 32, 3), "NHWC")]
    mask = next(o for o in artifact.outputs if o.name == "mask")
    assert mask.layout == "NHWC" and mask.shape == (1, 32, 32, 8)
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=artifact.path).get_signature_runner()
    result = runner(x=np.ascontiguousarray(feed["x"].transpose(0, 2, 3, 1)))
    from onnx_graphs import run_ort

    expected_mask = run_ort(model, feed)[1]
    assert np.abs(result["mask"].transpose(0, 3, 1, 2) - expected_mask).max() < 1e-4
    manifest = Path(build.manifest_path).read_text()
    assert '"layout": "NHWC"' in manifest


def test_unsupported_op_fails_fast_by_name_and_the_other_formats_build(tmp_path: Path) -> None:
    model, feed = group_models.unsupported()
    started = time.perf_counter()
    build = edgekit.convert(model, formats=["onnx", "tflite"], precision="fp32", output_dir=tmp_path, isolate=False)
    assert time.perf_counter() - started < 30
    assert [(a.format, a.validation.status) for a in build.artifacts] == [("onnx", "passed")]
    (failure,) = build.failures
    assert failure.format == "tflite"
    assert "CumSum node 'running_total' (opset 14): the ONNX op CumSum is not supported by the importer" in failure.error
    assert "build this model for onnx or openvino" in failure.hint


def test_the_route_refuses_in_under_a_second(tmp_path: Path) -> None:
    from edgekit.converters import onnx_tflite
    from edgekit.options import QuantScheme
    from edgekit.routes import RouteRequest
    from edgekit.sources import load_source
    from edgekit.sources.onnx_import import UnsupportedOnnxError

    model, _ = group_models.unsupported()
    request = RouteRequest(source=load_source(model), precision="fp32", scheme=QuantScheme(), calibration=[],
                           out_dir=tmp_path, stem="m")
    started = time.perf_counter()
    with pytest.raises(UnsupportedOnnxError, match="CumSum node 'running_total'"):
        onnx_tflite.convert(request)
    assert time.perf_counter() - started < 1.0


def test_check_lists_the_refused_node_for_tflite_only() -> None:
    model, _ = group_models.unsupported()
    report = edgekit.check(model, target="cpu-x86", formats=["tflite", "onnx"], precision="fp32")
    route = [f for f in report.findings if f.kind == "route"]
    assert [(f.format, f.layer, f.op, f.severity) for f in route] == [("tflite", "running_total", "CumSum", "error")]
    assert "the ONNX op CumSum is not supported by the importer (CumSum, opset 14)" in route[0].message


def test_check_maps_onnx_ops_to_tflite_builtins() -> None:
    model, _ = group_models.vision()
    report = edgekit.check(model, target="android-gpu", formats="tflite", precision="fp16")
    assert not [f for f in report.findings if f.kind == "route"]
    assert report.stats["tflite"].ops_total >= 14


@pytest.mark.slow
def test_cli_convert_onnx_for_android_gpu_builds_tflite(tmp_path: Path) -> None:
    import onnx

    model, _ = group_models.vision()
    path = tmp_path / "vision.onnx"
    onnx.save(model, str(path))
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "convert", str(path), "--target", "android-gpu", "--out",
                           str(tmp_path / "out"), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    data = json.loads(done.stdout)
    (artifact,) = data["artifacts"]
    assert artifact["format"] == "tflite" and artifact["precision"] == "fp16"
    assert artifact["validation"]["status"] == "passed" and artifact["validation"]["cosine"] > 0.999
    assert Path(artifact["path"]).read_bytes()[4:8] == b"TFL3"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_reflect_pad_of_a_middle_axis_of_a_rank3_tensor_through_litert(tmp_path: Path, mode: str) -> None:
    """basic-pitch's pattern: Pad (reflect) of axis 1 of a (1, T, 1) tensor, then a Conv. Torch reads 4 pads on a
    rank-3 tensor as an unbatched 2-D pad, which litert-torch lowered to a 4-axis tfl.transpose of a rank-3 tensor
    ("perm tensor elements size is not equal to input tensor rank"); the handler pads a batched view instead."""
    from onnx import TensorProto, helper, numpy_helper

    from onnx_graphs import rand, run_ort

    weight = numpy_helper.from_array(rand(4, 1, 1, 9, seed=3), "w")
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode=mode),
        helper.make_node("Reshape", ["padded", "shape"], ["image"]),
        helper.make_node("Conv", ["image", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "reflect_pad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 40, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 44])],
        [weight, numpy_helper.from_array(np.array([0, 6, 0, 0, 6, 0], np.int64), "pads"),
         numpy_helper.from_array(np.array([1, 1, 1, 52], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = [{"x": rand(1, 40, 1, seed=s)} for s in range(4)]
    build = edgekit.convert(model, formats="tflite", precision="fp32", validation_data=feeds, output_dir=tmp_path,
                            isolate=False)
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert artifact.validation.status == "passed"
    assert artifact.validation.cosine > 0.99999 and artifact.validation.max_abs_error < 1e-4
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=artifact.path)
    runner = interpreter.get_signature_runner()
    (tflite,) = runner(x=feeds[0]["x"]).values()
    np.testing.assert_allclose(tflite.reshape(-1), run_ort(model, feeds[0])[0].reshape(-1), atol=1e-5)
