"""The int8 rescue's search on planted cases: names that cannot be applied (ONNX, OpenVINO, TFLite from Keras),
OpenVINO's ignored scope checked in the IR, culprits already in float, the time budget, int16 activations, and the
rescue on by default."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from debug_models import outlier_onnx, sigmoid_head_onnx

import edgekit
from edgekit.errors import ConversionError
from edgekit.manifest import read_manifest
from edgekit.options import QuantScheme, Tolerances
from edgekit.rescue_remedies import Allowed, float_remedies
from edgekit.session import BuildSession, RouteJob

_WEIGHT_PATH = {"Convert", "Reshape", "Transpose", "Subtract", "Multiply", "Unsqueeze"}


@pytest.fixture(scope="module")
def mlp_data() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(164, 1, 16)).astype(np.float32)


def conv_onnx():
    """Three conv+ReLU layers with non-zero biases (OpenVINO splits each into Convolution + Add)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, previous, channels = [], [], "image", 3
    for i in range(3):
        inits += [numpy_helper.from_array(rng.normal(0, 0.3, (8, channels, 3, 3)).astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [previous, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        previous, channels = f"r{i}", 8
    graph = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _session(model, feeds) -> BuildSession:
    session = BuildSession()
    session.open(model)
    session.set_validation(feeds)
    return session


def _job(fmt: str, folder: Path, feeds, float_layers: tuple[str, ...]) -> RouteJob:
    (folder / "staging").mkdir(parents=True)
    return RouteJob(format=fmt, precision="int8", scheme=QuantScheme(), tolerances=Tolerances.default_for("int8"),
                    output_dir=folder, staging_dir=folder / "staging", stem="model_int8", calibration=feeds,
                    float_layers=float_layers)


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_a_layer_name_the_route_cannot_apply_fails_loudly(tmp_path: Path, fmt: str) -> None:
    feeds = [{"image": np.random.default_rng(i).normal(size=(1, 3, 16, 16)).astype(np.float32)} for i in range(8)]
    session = _session(conv_onnx(), feeds)
    with pytest.raises(ConversionError, match="cannot keep no_such_layer in float") as info:
        session.build_route(_job(fmt, tmp_path, feeds, ("conv1", "no_such_layer")))
    assert "edgekit debug" in info.value.hint


def _reads_quantized(op) -> list[bool]:
    """For each input of ``op`` in a saved IR: does a FakeQuantize or an int8 constant feed it?"""
    found = []
    for port in op.inputs():
        node, quantized = port.get_source_output().get_node(), False
        while True:
            kind = node.get_type_name()
            low_bits = kind == "Constant" and node.get_output_element_type(0).get_type_name() in ("i8", "u8")
            quantized |= kind == "FakeQuantize" or low_bits
            if kind not in _WEIGHT_PATH | {"FakeQuantize"}:
                break
            node = node.input_value(0).get_node()
        found.append(quantized)
    return found


def test_openvino_ignored_scope_really_leaves_the_layer_in_float(tmp_path: Path) -> None:
    import openvino as ov

    feeds = [{"image": np.random.default_rng(i).normal(size=(1, 3, 16, 16)).astype(np.float32)} for i in range(8)]
    artifact = _session(conv_onnx(), feeds).build_route(_job("openvino", tmp_path, feeds, ("conv1",)))
    ops = {op.get_friendly_name(): op for op in ov.Core().read_model(artifact.path).get_ops()}
    # the ONNX node conv1 is Convolution conv1/WithoutBiases + Add conv1 in OpenVINO: NNCF's name is the former
    assert ops["conv1/WithoutBiases"].get_type_name() == "Convolution"
    assert _reads_quantized(ops["conv1/WithoutBiases"]) == [False, False]  # float activations and weights
    for neighbour in ("conv0/WithoutBiases", "conv2/WithoutBiases"):  # the others stay int8
        assert _reads_quantized(ops[neighbour]) == [True, True], neighbour
    assert "kept in float: conv1" in artifact.notes


def test_a_culprit_already_in_float_is_not_proposed_again(tmp_path: Path, mlp_data: np.ndarray) -> None:
    edgekit.convert(sigmoid_head_onnx(), formats="onnx", precision=["fp32", "int8"], calibration_data=mlp_data[:100],
                    validation_data=mlp_data[100:], output_dir=tmp_path, rescue=False)
    report = edgekit.debug(tmp_path / "model_int8.onnx", mlp_data[100:])
    job = _job("onnx", tmp_path / "job", [], ())
    allowed = Allowed(float_layers=True, int16=True)
    first = float_remedies(job, report, allowed)
    assert first[0].kind == "head_float" and first[0].layers[0] == "head_sigmoid"  # the head as one group
    kept = RouteJob(**{**job.__dict__, "float_layers": first[0].layers})
    again = float_remedies(kept, report, allowed)
    assert all(not set(r.layers) & set(first[0].layers) for r in again)
    assert not float_remedies(job, report, Allowed(float_layers=False, int16=True))  # integer-only: no float groups


def test_the_search_stops_on_its_budget(tmp_path: Path, mlp_data: np.ndarray) -> None:
    build = edgekit.convert(outlier_onnx(), formats="onnx", precision="int8", calibration_data=mlp_data[:100],
                            validation_data=mlp_data[100:], output_dir=tmp_path, accuracy_target={"cosine": 0.999},
                            rescue_budget_s=0.0)
    record = read_manifest(tmp_path)["config"]["run"]["rescue"]["onnx/int8"]
    assert record["stopped"] == "time budget" and not record["met"] and record["tries"] == []
    assert record["budget_s"] == 0.0 and record["curve"][0]["cosine"] < 0.5
    assert build.artifact("onnx", "int8").validation.status == "failed"
    assert any("could not fix" in note for note in record["notes"])


def test_int16_activations_improve_an_integer_only_device_in_onnx(tmp_path: Path, mlp_data: np.ndarray) -> None:
    profile = tmp_path / "npu16.yaml"
    profile.write_text("name: int16-npu\ndescription: integer-only NPU with a16w8\nextends: cpu-x86\n"
                       "allow_float_fallback: false\nint16_activations: true\n")
    build = edgekit.convert(outlier_onnx(), target=profile, formats="onnx", precision="int8", calibration_data=mlp_data[:100],
                            validation_data=mlp_data[100:], output_dir=tmp_path / "out", accuracy_target={"cosine": 0.999})
    record = read_manifest(tmp_path / "out")["config"]["run"]["rescue"]["onnx/int8"]
    assert record["curve"][0]["cosine"] < 0.1 and record["cosine"] > 0.85  # int16 activations: 0.055 -> 0.866
    changes = record["scheme_changes"]  # percentile calibration too where it helps (7-bit weights: edgekit.cpu_int8)
    assert record["float_layers"] == [] and changes["activations"] == "int16"
    assert set(changes) <= {"activations", "calibration_method"}
    assert record["int8_compute_share"] == 1.0  # int8 weights everywhere
    # the head's weights for the 1000x unit are 1000x smaller than its others: per-channel int8 rounds them away,
    # which only float would fix, and the device has none
    assert not record["met"] and build.artifact("onnx", "int8").validation.status == "failed"
    assert "remedies this device does not allow: float layers" in record["notes"][-1]


def test_rescue_is_on_by_default_and_free_when_plain_int8_passes(tmp_path: Path, mlp_data: np.ndarray) -> None:
    edgekit.convert(outlier_onnx(factor=1.0), formats="onnx", precision="int8", calibration_data=mlp_data[:100],
                    validation_data=mlp_data[100:], output_dir=tmp_path / "healthy")
    record = read_manifest(tmp_path / "healthy")["config"]["run"]["rescue"]["onnx/int8"]
    assert record["met"] and record["tries"] == [] and record["stopped"] == "target met"
    assert record["target"] == {"cosine": 0.98, "top1_agreement": 0.95, "min_int8_weight_fraction": 0.5,
                                "relative_error": 0.1, "detection_cosine": 0.95}
    edgekit.convert(outlier_onnx(), formats="onnx", precision="int8", calibration_data=mlp_data[:100],
                    validation_data=mlp_data[100:], output_dir=tmp_path / "plain", rescue=False)
    assert "rescue" not in read_manifest(tmp_path / "plain")["config"]


def test_onnx_to_tflite_rescue_says_litert_torch_takes_no_remedy(tmp_path: Path, mlp_data: np.ndarray) -> None:
    build = edgekit.convert(outlier_onnx(), formats="tflite", precision="int8", calibration_data=mlp_data[:100],
                            validation_data=mlp_data[100:], output_dir=tmp_path, accuracy_target={"cosine": 0.999})
    record = read_manifest(tmp_path)["config"]["run"]["rescue"]["tflite/int8"]
    assert record["stopped"] == "no remedy for this route" and record["tries"] == []  # no float layer was proposed
    assert not record["met"] and record["curve"][0]["cosine"] < 0.999 and record["float_layers"] == []
    assert any("the PyTorch and ONNX routes to TFLite" in note for note in record["notes"])
    assert build.artifact("tflite", "int8").validation.status == "failed"


@pytest.mark.slow
def test_a_tflite_tensor_name_the_keras_route_cannot_apply_fails_loudly(tmp_path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,), name="x")
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(hidden))
    data = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    build = edgekit.convert(model, formats="tflite", precision="int8", float_layers=["no_such_layer"], rescue=False,
                            calibration_data=data[:40], validation_data=data[40:], output_dir=tmp_path)
    assert not build.artifacts and len(build.failures) == 1
    assert "cannot keep no_such_layer in float: no tensor of the TFLite model has that name" in build.failures[0].error
