"""ONNX Runtime int8 failures handled per node (converters/_ort_fallback.py), on graphs where onnxruntime 1.32's
own quantizer raises or writes a file it cannot load.

- a grouped ConvTranspose quantized per channel: ``operands could not be broadcast together with shapes (6,) (3,)``
  (its bias scale is computed per input-group channel);
- a Gemm whose bias is one broadcast value: ``index 1 is out of bounds for axis 0 with size 1``;
- a Conv weight that another op also reads (a weight-norm style ``Flatten``): the per-channel scale reaches
  the other op's QuantizeLinear and the quantized file fails when run;
- basic-pitch's ONNX model (zoo): 18 convolutions share one bias, ONNX Runtime's copy of it took the name of a
  convolution's output and the quantized file did not load (``Invalid attribute perm {0, 2, 3, 1}``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.converters._ort_fallback import Graph, Plan, _Search, quantize_per_node
from edgekit.errors import ConversionError
from edgekit.specs import QuantizerFallback


def _weights(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).normal(0, 0.3, shape).astype(np.float32)


def _model(nodes, inputs, outputs, initializers):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                              [numpy_helper.from_array(a, n) for n, a in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def grouped_conv_transpose():
    """Conv -> Relu -> ConvTranspose(group=2): per-channel quantization of the ConvTranspose raises in ORT 1.32."""
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("ConvTranspose", ["r", "w", "b"], ["y"], name="up", group=2, strides=[2, 2])]
    return _model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 6, 15, 15])],
                  {"w1": _weights(4, 3, 3, 3), "b1": _weights(4), "w": 3 * _weights(4, 3, 1, 1), "b": _weights(6)})


def gemm_with_broadcast_bias():
    from onnx import helper

    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["a"], name="fc1", transB=1),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)]
    return _model(nodes, [("x", [1, 16])], [("y", [1, 8])],
                  {"w1": _weights(12, 16), "b1": _weights(12), "w2": _weights(8, 12), "b2": _weights(1)})


def conv_weight_read_twice():
    """A Conv whose weight is also flattened into a second output (as a weight-norm computation reads it)."""
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["w"], ["wf"], name="flat")]
    return _model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 4, 8, 8]), ("wf", [4, 27])],
                  {"w": _weights(4, 3, 3, 3), "b": _weights(4)})


def _samples(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, *shape)).astype(np.float32)


def _ort_attempt(model, folder: Path, shape: tuple[int, ...], per_channel: bool = True):
    """The real thing, without edgekit's route: quantize_static with the plan, then load and run the result."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    source, target = folder / "model.onnx", folder / "model.int8.onnx"
    onnx.save(model, str(source))
    graph = Graph(model)
    feeds = [{"x": s} for s in _samples(shape, 8, 3)]

    class Reader:
        def __init__(self) -> None:
            self.rest = iter(feeds)

        def get_next(self):
            return next(self.rest, None)

    def attempt(plan: Plan) -> None:
        extra = {"TensorQuantOverrides": plan.overrides(graph)} if plan.per_tensor else {}
        quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        weight_type=QuantType.QInt8, nodes_to_exclude=list(plan.excluded), extra_options=extra)
        ort.InferenceSession(str(target), providers=["CPUExecutionProvider"]).run(None, feeds[0])

    return attempt, graph


def test_onnx_runtime_itself_fails_on_these_graphs(tmp_path: Path) -> None:
    """The failures are ONNX Runtime's (no fallback): what the fallback exists for."""
    cases = [(grouped_conv_transpose(), (1, 3, 8, 8), ValueError, r"could not be broadcast together with shapes \(6,\) \(3,\)"),
             (gemm_with_broadcast_bias(), (1, 16), IndexError, "index 1 is out of bounds for axis 0 with size 1"),
             (conv_weight_read_twice(), (1, 3, 8, 8), Exception, "wf_QuantizeLinear")]
    for index, (model, shape, error, message) in enumerate(cases):
        folder = tmp_path / str(index)
        folder.mkdir()
        attempt, _ = _ort_attempt(model, folder, shape)
        with pytest.raises(error, match=message):
            attempt(Plan())


@pytest.mark.parametrize(("make", "shape", "node", "op_type", "reason"), [
    (grouped_conv_transpose, (1, 3, 8, 8), "up", "ConvTranspose", "operands could not be broadcast"),
    (gemm_with_broadcast_bias, (1, 16), "fc2", "Gemm", "index 1 is out of bounds"),
    (conv_weight_read_twice, (1, 3, 8, 8), "flat", "Flatten", "wf_QuantizeLinear"),
])
def test_the_node_named_in_onnx_runtime_s_traceback_gets_per_tensor_weights(tmp_path, make, shape, node, op_type, reason):
    attempt, graph = _ort_attempt(make(), tmp_path, shape)
    fallbacks = quantize_per_node(attempt, graph, per_channel=True)
    assert [(f.node, f.op_type, f.action) for f in fallbacks] == [(node, op_type, "per-tensor weights")]
    assert reason in fallbacks[0].reason


def test_bisection_finds_the_node_when_nothing_names_it(tmp_path: Path) -> None:
    attempt, graph = _ort_attempt(grouped_conv_transpose(), tmp_path, (1, 3, 8, 8))
    plan, search = Plan(), _Search(attempt, graph, per_channel=True, max_tries=16, budget_s=120)
    assert search.bisect("a failure that named no node", plan)
    assert plan.per_tensor == {"up": "a failure that named no node"} and not plan.excluded
    assert search.tries == 3  # both per-tensor (works), conv alone (fails), then conv + up is the known success
    attempt(plan)


def test_when_nothing_works_the_error_quotes_onnx_runtime(tmp_path: Path) -> None:
    attempt, graph = _ort_attempt(grouped_conv_transpose(), tmp_path, (1, 3, 8, 8))
    with pytest.raises(ConversionError) as raised:
        quantize_per_node(attempt, graph, per_channel=True, max_tries=1)
    error = raised.value
    assert error.message == ("ONNX Runtime int8 quantization failed at up: ValueError: operands could not be broadcast "
                             "together with shapes (6,) (3,)")
    assert "calibration samples" not in error.hint and "fp16" in error.hint
    assert "qdq_quantizer.py" in error.detail  # ORT's own traceback is kept for --verbose and the manifest


@pytest.mark.slow  # two ONNX Runtime calibrations and a validation in a worker: about 20 s
def test_convert_records_the_fallback_in_the_manifest_and_the_build_passes(tmp_path: Path) -> None:
    import edgekit
    from edgekit.manifest import read_manifest

    data = _samples((3, 8, 8), 48, 1)
    build = edgekit.convert(grouped_conv_transpose(), formats=["onnx"], precision="int8", calibration_data=data[:32],
                            validation_data=data[32:], output_dir=tmp_path / "out", rescue=False)
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert artifact.passed and artifact.validation.cosine > 0.999, artifact.validation  # 0.99959 measured
    assert artifact.validation.int8_weight_fraction > 0.9  # 0.94: every weight int8, the ConvTranspose's per tensor
    assert artifact.quantizer_fallbacks == (QuantizerFallback(
        node="up", op_type="ConvTranspose", reason="operands could not be broadcast together with shapes (6,) (3,)",
        action="per-tensor weights"),)
    assert ("warning: ONNX Runtime's quantizer failed on ConvTranspose up (operands could not be broadcast together "
            "with shapes (6,) (3,)): per-tensor weights") in artifact.notes
    (recorded,) = read_manifest(tmp_path / "out")["artifacts"]
    assert recorded["quantizer_fallbacks"] == [{"node": "up", "op_type": "ConvTranspose", "action": "per-tensor weights",
                                                "reason": "operands could not be broadcast together with shapes (6,) (3,)"}]


@pytest.mark.slow
@pytest.mark.zoo
def test_basic_pitch_onnx_int8_loads_once_shared_biases_are_copied(tmp_path: Path) -> None:
    """basic-pitch 0.4.0's ONNX model: its int8 file did not load; now it builds, and validation judges it."""
    import edgekit

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from zoo_models import MODELS, Source, fetch

    zoo = MODELS["basic-pitch"]
    path = fetch(zoo)
    source = Source(zoo, path)
    build = edgekit.convert(str(path), formats=["onnx"], precision="int8", output_dir=tmp_path / "out", rescue=False,
                            calibration_data=zoo.make_data(source, 16, "calibration"), calibration_samples=16,
                            validation_data=zoo.make_data(source, 16, "evaluation"), validation_samples=16)
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert "24 bias tensors shared by several layers copied per layer before quantization" in " ".join(artifact.notes)
    assert artifact.quantizer_fallbacks == ()
    assert artifact.validation.int8_weight_fraction > 0.95  # 0.976 measured
    assert 0.9 < artifact.validation.cosine < 0.98 and artifact.validation.status == "failed"  # 0.954: judged, honestly


@pytest.mark.slow  # the CLI builds the int8 ONNX file in a worker: about 20 s
def test_the_cli_prints_the_fallback_under_the_build_table(tmp_path: Path) -> None:
    import subprocess

    import onnx

    onnx.save(grouped_conv_transpose(), str(tmp_path / "up.onnx"))
    data = _samples((3, 8, 8), 48, 1)
    np.save(tmp_path / "calibration.npy", data[:32])
    np.save(tmp_path / "validation.npy", data[32:])
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "convert", str(tmp_path / "up.onnx"), "-f", "onnx", "-p", "int8",
                           "-c", str(tmp_path / "calibration.npy"), "--validation", str(tmp_path / "validation.npy"),
                           "-o", str(tmp_path / "out"), "--no-rescue"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("warning: ONNX Runtime's quantizer failed on ConvTranspose up (operands could not be broadcast together "
            "with shapes (6,) (3,)): per-tensor weights") in " ".join(done.stdout.split())
