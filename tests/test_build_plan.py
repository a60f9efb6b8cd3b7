"""The build plan: options checked once, routes with their declared capabilities, every problem refused at once."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import edgekit
from edgekit.errors import DataError, InvalidOptionError, PlanError, UnsupportedRouteError
from edgekit.options import QuantScheme
from edgekit.plan import BuildInputs, BuildOptions, BuildPlan, make_plan
from edgekit.rescue import parse_target
from edgekit.routes import ROUTES, SCHEME_FIELDS

CALIBRATION = object()  # the plan only checks that calibration data is given; the build loads it


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Model files as the sniffer sees them (the plan reads nothing else of a model)."""
    folder = tmp_path_factory.mktemp("models")
    keras3 = folder / "net.keras"
    with zipfile.ZipFile(keras3, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.0"}))
        archive.writestr("config.json", "{}")
    pt2 = folder / "net.pt2"
    with zipfile.ZipFile(pt2, "w") as archive:
        archive.writestr("net/archive_format", "pt2")
    return {"keras3": keras3, "torch": pt2}


def plan(model: Path, calibration=CALIBRATION, **options) -> BuildPlan:
    return make_plan(BuildInputs(model, calibration_data=calibration), BuildOptions.of(options))[0]


def test_keras_tflite_refuses_scheme_fields_it_ignored(models):
    # TFLiteConverter's weights are always symmetric, its int8 activations asymmetric, its calibration min/max:
    # these were accepted and silently ignored by the Keras route while the PyTorch route refused them.
    for field, value in (("symmetric_weights", False), ("symmetric_activations", True), ("calibration_method", "entropy")):
        with pytest.raises(UnsupportedRouteError) as info:
            plan(models["keras3"], formats="tflite", precision="int8", quantization={field: value})
        assert f"does not honour quantization {field}={value!r}" in info.value.message
        assert "keras_tflite" in info.value.message and "io_dtype, per_channel" in info.value.hint


def test_torch_tflite_refuses_the_same_fields_through_the_same_check(models):
    for field, value in (("symmetric_weights", False), ("activations", "int16"), ("io_dtype", "uint8")):
        with pytest.raises(UnsupportedRouteError) as info:
            plan(models["torch"], formats="tflite", precision="int8", quantization={field: value})
        assert f"torch->tflite route (torch_tflite) does not honour quantization {field}={value!r}" in info.value.message


def test_fields_a_route_honours_are_planned(models):
    built = plan(models["keras3"], formats="tflite", precision="int8",
                 quantization={"per_channel": False, "io_dtype": "uint8", "activations": "int8"})
    assert built.scheme == QuantScheme(per_channel=False, io_dtype="uint8")
    (job,) = built.jobs
    assert (job.format, job.precision, job.route, job.needs_calibration) == ("tflite", "int8", "keras_tflite", True)
    assert job.scheme_fields == ("activations", "io_dtype", "per_channel")
    onnx = plan(models["keras3"], formats="onnx", precision="int8", quantization={"calibration_method": "entropy",
                                                                                   "symmetric_activations": True})
    assert onnx.scheme.calibration_method == "entropy" and onnx.jobs[0].route == "keras_onnx"


def test_a_scheme_field_at_its_default_is_never_refused(models):
    built = plan(models["torch"], formats=["tflite", "onnx", "openvino"], precision="int8")
    assert [job.label for job in built.jobs] == ["tflite/int8", "onnx/int8", "openvino/int8"]
    assert built.jobs[0].static_shapes is True and built.jobs[1].static_shapes is False


def test_every_problem_is_refused_in_one_error(models):
    with pytest.raises(PlanError) as info:
        plan(models["keras3"], calibration=None, formats=["onnx", "openvino", "tflite"], precision="int8",
             quantization={"activations": "int16", "symmetric_weights": False}, tolerances={"cosine": "high"})
    error = info.value
    kinds = sorted(type(p).__name__ for p in error.problems)
    assert kinds == ["DataError", "InvalidOptionError", "UnsupportedRouteError", "UnsupportedRouteError"]
    assert "4 problems" in error.message
    assert "keras_openvino) does not honour quantization activations='int16'" in error.message
    assert "keras_tflite) does not honour quantization symmetric_weights=False" in error.message
    assert "int8 quantization needs calibration data" in error.message and "invalid tolerances" in error.message
    assert error.exit_code == 2 and isinstance(error, InvalidOptionError)


def test_unknown_names_are_all_listed(models):
    with pytest.raises(PlanError) as info:
        plan(models["keras3"], formats=["onnx", "coreml"], precision=["int8", "int4"])
    assert "unknown format 'coreml'" in info.value.message and "unknown precision 'int4'" in info.value.message
    assert len(info.value.problems) == 2


def test_one_problem_is_raised_as_itself(models):
    with pytest.raises(DataError) as info:
        plan(models["keras3"], calibration=None, formats="onnx", precision="int8")
    assert info.value.message == "int8 quantization needs calibration data"


def test_invalid_option_types_are_named_together():
    with pytest.raises(InvalidOptionError) as info:
        BuildOptions.of({"calibration_samples": 0, "timeout": -1, "formats": 3})
    for name in ("calibration_samples", "timeout", "formats"):
        assert name in info.value.message


def test_the_plan_serialises_for_the_manifest(models):
    built = plan(models["keras3"], target="coral-edgetpu", input_shapes={"x": [1, 8, 8, 1]})
    document = json.loads(json.dumps(built.manifest_config()))
    assert document["schema"] == "edgekit.plan/1" and document["target"] == "coral-edgetpu"
    assert document["precisions"] == ["int8"] and document["formats"] == ["tflite"]
    assert document["scheme"]["io_dtype"] == "uint8" and document["options"]["input_shapes"] == {"x": [1, 8, 8, 1]}
    assert document["jobs"][0]["route"] == "keras_tflite" and document["tolerances"]["int8"]["cosine"] == 0.98
    assert document["name"] == "net" and document["isolate"] is True and document["optimizations"] == []


def test_calibration_is_checked_in_the_plan_only():
    package = Path(edgekit.__file__).parent
    sayers = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
              if "needs calibration data" in p.read_text(encoding="utf-8")]
    assert sayers == ["plan_routes.py"]


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_route_declarations_are_well_formed(key):
    import importlib.util

    route = ROUTES[key]
    assert route.scheme_fields <= SCHEME_FIELDS and set(QuantScheme.model_fields) == SCHEME_FIELDS
    assert route.requires and all(importlib.util.find_spec(name) is not None for name in route.requires)
    assert set(route.precisions) <= {"fp32", "fp16", "int8", "dynamic"}


def test_openvino_refuses_int16_activations_before_any_work(models):
    with pytest.raises(UnsupportedRouteError) as info:
        plan(models["torch"], formats="openvino", precision="int8", quantization={"activations": "int16"})
    assert "torch_openvino) does not honour quantization activations='int16'" in info.value.message
    assert info.value.hint.endswith("honours: bias_correction, calibration_method, per_channel, smooth_quant, "
                                    "symmetric_activations, symmetric_weights, weight_range")


def test_parse_target_reads_strings_and_dicts() -> None:
    target = parse_target("cosine=0.99,top1=0.97")
    assert (target.cosine, target.top1_agreement) == (0.99, 0.97)
    assert parse_target({"cosine": 0.995}).top1_agreement is None
    for bad, match in (("cosine", "cannot read"), ({"psnr": 30}, "unknown accuracy target"),
                       ({"cosine": 1.5}, "outside"), ({"top1": "high"}, "not a number"), ({}, "empty")):
        with pytest.raises(InvalidOptionError, match=match):
            parse_target(bad)
