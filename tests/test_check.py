"""`edgekit check` / `edgekit.check` and the checks `convert` runs: on purpose-built models, each with a
known incompatibility (dynamic shapes on a static-shape NPU, an op outside the Edge TPU set, float I/O on an
integer-only NPU, an op a device without CPU fallback cannot run), plus budgets as a gate."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import Cancelled, IncompatibleTargetError
from edgekit.formats.tflite.schema import list_ops

pytestmark = pytest.mark.slow  # the tests here convert or train real models


def _onnx_model(path: Path, *, batch: str | int = "N", height: str | int = 8, last: str = "Sigmoid") -> Path:
    """Conv(1->4, 3x3, pad 1) + Relu + GlobalAveragePool + Flatten + Gemm(4->3) + ``last`` on [batch, 1, height, 8]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "fw"),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["l"], name="dense", transB=1),
             helper.make_node(last, ["l"], ["y"], name="head")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, height, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def onnx_dynamic(tmp_path_factory) -> Path:
    return _onnx_model(tmp_path_factory.mktemp("check") / "dyn.onnx")


@pytest.fixture(scope="module")
def strict_profile(tmp_path_factory) -> Path:
    """A user NPU profile with an inline ONNX allow-list and no CPU fallback: Sigmoid is outside it."""
    path = tmp_path_factory.mktemp("profiles") / "strict-npu.yaml"
    path.write_text("extends: cpu-x86\nname: strict-npu\ndescription: test NPU\ndevice_class: npu\nformats: [onnx]\n"
                    "cpu_fallback: false\nops: {onnx: [Conv, Relu, GlobalAveragePool, Flatten, Gemm]}\n")
    return path


@pytest.fixture(scope="module")
def keras_leaky():
    """Conv2D(4, 3x3, same) + LeakyReLU + Flatten + Dense(3) on [?, 8, 8, 1]: LeakyReLU is not in the Edge TPU set."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(3, name="dense")(x)
    return keras.Model(inp, out)


def test_check_reports_typed_progress_and_stops_on_cancel(onnx_dynamic):
    events: list[edgekit.ProgressEvent] = []
    report = edgekit.check(onnx_dynamic, target="cpu-x86", progress=events.append)
    assert report.stage == "source" and report.formats == ("onnx", "openvino", "tflite")
    assert [e.stage for e in events] == ["load", "check", "check"] and events[-1].fraction == 1.0
    cancel = threading.Event()

    def on_event(event: edgekit.ProgressEvent) -> None:
        cancel.set()  # cancel as soon as the worker says it is loading the model

    started = time.monotonic()
    with pytest.raises(Cancelled):
        edgekit.check(onnx_dynamic, target="cpu-x86", progress=on_event, cancel=cancel)
    assert time.monotonic() - started < 30  # the worker is killed, not waited for


def test_dynamic_batch_on_static_npu_is_a_change_and_other_dims_an_error(onnx_dynamic, tmp_path):
    report = edgekit.check(onnx_dynamic, target="intel-npu", isolate=False)
    shapes = [f for f in report.findings if f.kind == "dynamic_shape"]
    assert [(f.severity, f.layer) for f in shapes] == [("change", "x")]
    assert "fixes the batch to 1" in shapes[0].hint and report.ok
    tall = _onnx_model(tmp_path / "tall.onnx", height="H")
    report = edgekit.check(tall, target="intel-npu", isolate=False)
    assert [f.severity for f in report.findings if f.kind == "dynamic_shape"] == ["error"]
    assert "--input-shape x=" in report.blocking[0].hint
    assert edgekit.check(tall, target="intel-npu", input_shapes={"x": (1, 1, 8, 8)}, isolate=False).ok


def test_op_outside_a_strict_allow_list_refuses_the_build_unless_forced(onnx_dynamic, strict_profile, tmp_path):
    report = edgekit.check(onnx_dynamic, target=strict_profile)  # a file: loaded in a worker process
    (finding,) = report.blocking
    assert (finding.op, finding.format, finding.certainty) == ("Sigmoid", "onnx", "known")
    stats = report.stats["onnx"]
    assert (stats.ops_total, stats.ops_fallback) == (6, 1)
    # Conv: 1*8*8*4 outputs x 1*3*3 = 2304 MACs; Gemm: 3 x 4 = 12; the other four ops: their output elements.
    assert stats.compute_total == 2304 + 256 + 4 + 4 + 12 + 3 and stats.compute_fallback == 3
    with pytest.raises(IncompatibleTargetError, match="Sigmoid") as info:
        edgekit.convert(onnx_dynamic, target=strict_profile, output_dir=tmp_path / "refused", isolate=False)
    assert "force=True" in info.value.hint and not (tmp_path / "refused" / "edgekit-manifest.json").exists()
    build = edgekit.convert(onnx_dynamic, target=strict_profile, output_dir=tmp_path / "forced", isolate=False, force=True)
    compat = build.artifacts[0].compatibility
    assert compat.stage == "artifact" and [f.op for f in compat.blocking] == ["Sigmoid"]
    manifest = json.loads(Path(build.manifest_path).read_text())
    assert manifest["artifacts"][0]["compatibility"]["stats"]["onnx"]["ops_fallback"] == 1
    assert manifest["config"]["run"]["compatibility"][0]["findings"][0]["op"] == "Sigmoid"


def test_op_outside_the_edgetpu_set_before_and_after_conversion(keras_leaky, digits, tmp_path):
    report = edgekit.check(keras_leaky, target="coral-edgetpu")
    ops = {f.op: f for f in report.findings if f.kind == "op" and f.op}
    assert ops["LeakyReLU"].severity == "fallback" and ops["LeakyReLU"].certainty == "likely"
    assert any("after leaky also run on the CPU" in f.message for f in report.findings)  # partitioning: prefix
    calib = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
    build = edgekit.convert(keras_leaky, target="coral-edgetpu", calibration_data=calib, output_dir=tmp_path, isolate=False)
    artifact = build.artifacts[0]
    assert artifact.format == "tflite" and artifact.precision == "int8"
    assert artifact.inputs[0].dtype == "uint8" and artifact.inputs[0].shape == (1, 8, 8, 1)  # profile: uint8 I/O, static
    real = {op.op: op for op in list_ops(Path(artifact.path))}
    assert real["CONV_2D"].compute == 8 * 8 * 4 * 3 * 3 * 1 and real["FULLY_CONNECTED"].compute == 3 * 256
    flagged = {f.op for f in artifact.compatibility.findings if f.kind == "op" and f.op}
    assert "LEAKY_RELU" in flagged and "CONV_2D" not in flagged
    stats = artifact.compatibility.stats["tflite"]
    assert stats.ops_fallback >= 2 and 0 < stats.fallback_fraction < 1
    again = edgekit.check(artifact.path, target="coral-edgetpu")  # an artifact file: read, not converted
    assert (again.stage, again.precision, again.stats) == ("artifact", "int8", artifact.compatibility.stats)


def test_float_io_on_an_integer_only_npu(keras_leaky, tmp_path):
    report = edgekit.check(keras_leaky, target="android-npu", quantization={"io_dtype": "float32"})
    (io,) = [f for f in report.findings if f.kind == "dtype"]
    assert io.severity == "fallback" and "io_dtype=int8" in io.hint
    assert not [f for f in edgekit.check(keras_leaky, target="android-npu").findings if f.kind == "dtype"]
    calib = np.random.default_rng(1).random((16, 8, 8, 1), dtype=np.float32)
    build = edgekit.convert(keras_leaky, target="android-npu", calibration_data=calib, quantization={"io_dtype": "float32"},
                            output_dir=tmp_path, isolate=False, validate_on_calibration=True)  # 16 samples: too few to split
    compat = build.artifacts[0].compatibility
    assert [f.certainty for f in compat.findings if f.kind == "dtype"] == ["known"]
    assert {"QUANTIZE", "DEQUANTIZE"} <= {op.op for op in list_ops(Path(build.artifacts[0].path))}


def test_torch_aten_ops_are_mapped_and_flagged():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.dense = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(256, 3)

        def forward(self, x):
            return nn.functional.gelu(self.dense(torch.relu(self.conv(x)).flatten(1)))

    report = edgekit.check(Net(), target="android-gpu", formats="tflite", example_inputs=torch.zeros(1, 1, 8, 8))
    (gelu,) = [f for f in report.findings if f.kind == "op"]
    assert (gelu.op, gelu.severity, gelu.certainty) == ("aten.gelu.default", "fallback", "likely")
    assert "instead of GELU" in gelu.hint
    assert [f.kind for f in report.findings if f.severity == "info"] == ["layout"]  # NCHW model, NHWC device
    stats = report.stats["tflite"]
    assert stats.ops_total == 5 and stats.compute_fallback == 3
    assert stats.compute_total == 8 * 8 * 4 * 9 + 256 + 256 + 3 * 256 + 3  # conv MACs, relu, flatten, linear MACs, gelu
    htp = edgekit.check(Net(), target="qualcomm-htp", example_inputs=torch.zeros(1, 1, 8, 8))
    assert not htp.findings and htp.stats["onnx"].opset_known  # QDQ with float I/O is how QNN EP takes models


def test_precision_the_device_does_not_run_is_an_error(keras_leaky, tmp_path):
    report = edgekit.check(keras_leaky, target="coral-edgetpu", precision="fp32")
    assert [f.kind for f in report.blocking] == ["precision"] and "int8" in report.blocking[0].hint
    fp32 = edgekit.convert(keras_leaky, target="cpu-arm64", formats="tflite", output_dir=tmp_path, isolate=False)
    cli = _cli("check", fp32.artifacts[0].path, "--target", "coral-edgetpu", "--json")
    report = json.loads(cli.stdout)
    assert cli.returncode == 1 and report["precision"] == "fp32" and report["stage"] == "artifact"
    assert {f["kind"] for f in report["findings"] if f["severity"] == "error"} == {"precision", "dynamic_shape"}


def test_static_shapes_and_explicit_override_recorded(onnx_dynamic, tmp_path):
    build = edgekit.convert(onnx_dynamic, target="intel-npu", precision="fp16", output_dir=tmp_path / "a", isolate=False)
    assert edgekit.open_runner(build.artifacts[0].path, "openvino").inputs[0].shape == (1, 1, 8, 8) and build.passed
    assert not [f for f in build.artifacts[0].compatibility.findings if f.kind == "dynamic_shape"]
    config = json.loads(Path(build.manifest_path).read_text())["config"]
    assert config["run"]["input_shapes"] == {"x": [1, 1, 8, 8]} and config["plan"]["options"]["precision"] == ["fp16"]
    build = edgekit.convert(onnx_dynamic, target="intel-npu", precision="fp16", input_shapes={"x": (2, 1, 8, 8)},
                            output_dir=tmp_path / "b", isolate=False)
    assert edgekit.open_runner(build.artifacts[0].path, "openvino").inputs[0].shape == (2, 1, 8, 8)
    tall = _onnx_model(tmp_path / "tall.onnx", height="H")
    with pytest.raises(IncompatibleTargetError, match="intel-npu needs static shapes") as info:
        edgekit.convert(tall, target="intel-npu", precision="fp16", output_dir=tmp_path / "c", isolate=False)
    assert "--input-shape x=" in info.value.hint
    samples = np.random.default_rng(0).standard_normal((4, 1, 1, 12, 8)).astype(np.float32)  # 4 samples of [1, 1, 12, 8]
    build = edgekit.convert(tall, target="intel-npu", precision="fp16", validation_data=samples, output_dir=tmp_path / "d",
                            isolate=False)
    assert edgekit.open_runner(build.artifacts[0].path, "openvino").inputs[0].shape == (1, 1, 12, 8) and build.passed


def test_budgets_gate_the_build_and_the_cli(onnx_dynamic, tmp_path):
    build = edgekit.convert(onnx_dynamic, target="cpu-x86", formats="onnx", output_dir=tmp_path / "a", isolate=False,
                            budgets={"max_size_bytes": 100, "min_accuracy": 0.9})
    budgets = {b.name: b for b in build.artifacts[0].budgets}
    assert budgets["max_size_bytes"].status == "failed" and budgets["max_size_bytes"].value == build.artifacts[0].size_bytes
    assert budgets["min_accuracy"].status == "not_measured" and not build.passed
    assert json.loads(Path(build.manifest_path).read_text())["status"] == "failed"
    ok = edgekit.convert(onnx_dynamic, target="cpu-x86", formats="onnx", output_dir=tmp_path / "b", isolate=False,
                         budgets={"max_size_bytes": 100_000})
    assert ok.passed and ok.artifacts[0].budgets[0].status == "passed"
    with pytest.raises(edgekit.EdgekitError, match="max_size_byte"):
        edgekit.convert(onnx_dynamic, target="cpu-x86", formats="onnx", output_dir=tmp_path / "c", budgets={"max_size_byte": 1})
    cli = _cli("convert", str(onnx_dynamic), "-f", "onnx", "-o", str(tmp_path / "d"), "--budget", "max_size_bytes=100")
    assert cli.returncode == 1 and "budget max_size_bytes" in cli.stdout


def test_cli_check_exit_codes(onnx_dynamic, strict_profile):
    ok = _cli("check", str(onnx_dynamic), "--target", "intel-npu")
    assert ok.returncode == 0 and "dynamic batch" in ok.stdout
    bad = _cli("check", str(onnx_dynamic), "--target", str(strict_profile), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["findings"][0]["op"] == "Sigmoid"
    missing = _cli("check", str(onnx_dynamic), "--target", "coral-edgetpux")
    assert missing.returncode == 2 and "did you mean 'coral-edgetpu'" in missing.stderr


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True)
