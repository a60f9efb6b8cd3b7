"""The built-in device catalog: every profile loads, cites its sources, names an op set that exists, and
converts a small trained model to its preferred format and precision; malformed profiles and op sets give
errors that name the file, the field and what is allowed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import edgekit
from edgekit.compat.opsets import builtin_opsets, load_opset
from edgekit.errors import ProfileError
from edgekit.profiles import builtin_names, list_profiles, load_profile

pytestmark = pytest.mark.slow  # the tests here convert or train real models

CATALOG = builtin_names()


def test_catalog_has_the_devices_asked_for():
    assert len(CATALOG) >= 10
    assert {"cpu-x86", "cpu-x86-openvino", "intel-igpu", "intel-npu", "raspberry-pi", "android-gpu", "android-npu",
            "coral-edgetpu", "nxp-imx8mp-npu", "nvidia-jetson", "qualcomm-htp"} <= set(CATALOG)
    classes = {p.device_class for p in list_profiles()}
    assert classes == {"cpu", "gpu", "npu"}


@pytest.mark.parametrize("name", CATALOG)
def test_profile_is_complete(name):
    profile = load_profile(name)
    assert profile.references and all(ref.startswith("https://") for ref in profile.references)
    if profile.opset:
        opset = load_opset(profile.opset)
        assert opset.references and any(getattr(opset, fmt) for fmt in profile.formats)
    if profile.supported_precisions:
        assert profile.precision in profile.supported_precisions
    if not profile.allow_float_fallback:  # integer-only accelerators
        assert profile.precision == "int8" and profile.device_class == "npu"


def test_integer_only_and_static_npus():
    for name in ("coral-edgetpu", "android-npu", "nxp-imx8mp-npu", "qualcomm-htp"):
        profile = load_profile(name)
        assert profile.static_shapes and not profile.allow_float_fallback and profile.precision == "int8"
    npu = load_profile("intel-npu")
    assert npu.runtime.openvino_device == "NPU" and npu.static_shapes and not npu.cpu_fallback
    assert load_profile("coral-edgetpu").opset == "edgetpu" and "CONV_2D" in load_opset("edgetpu").tflite
    assert load_profile("nvidia-jetson").runtime.onnx_execution_provider == "TensorrtExecutionProvider"


@pytest.fixture(scope="module")
def digits_model(digits_keras_file):
    import keras

    return keras.saving.load_model(digits_keras_file)


@pytest.mark.parametrize("name", CATALOG)
def test_profile_converts_to_its_preferred_format_and_precision(name, digits_model, digits, tmp_path):
    profile = load_profile(name)
    x_train, x_test, _, _ = digits
    if profile.formats[0] == "executorch":  # PyTorch only: tests/test_executorch_route.py converts to it
        from edgekit.errors import UnsupportedRouteError

        with pytest.raises(UnsupportedRouteError, match="no converter from keras3 to executorch"):
            edgekit.convert(digits_model, target=name, output_dir=tmp_path, isolate=False)
        return
    build = edgekit.convert(digits_model, target=name, formats=profile.formats[0], calibration_data=x_train[:64],
                            validation_data=x_test, output_dir=tmp_path, isolate=False)  # 200: top-1 >= 0.95 can be shown
    (artifact,) = build.artifacts
    assert (artifact.format, artifact.precision) == (profile.formats[0], profile.precision)
    assert artifact.passed, artifact.validation
    assert artifact.compatibility is not None and artifact.compatibility.stage == "artifact"
    assert not artifact.compatibility.blocking, artifact.compatibility.blocking
    runner = edgekit.open_runner(artifact.path, artifact.format)
    if profile.static_shapes:
        assert all(None not in spec.shape for spec in runner.inputs)
    if profile.precision == "int8" and artifact.format == "tflite":
        assert runner.inputs[0].dtype == profile.quantization.io_dtype
    config = json.loads(build.manifest_path and open(build.manifest_path).read())["config"]
    assert config["plan"]["target"] == name and config["plan"]["precisions"] == [profile.precision]


def _bad(tmp_path, text: str):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: cpu-x86\nname: bad\ndescription: x\n" + text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value


def test_malformed_profiles_name_file_field_and_choices(tmp_path):
    error = _bad(tmp_path, "opset: edgetpu\nops: {tflite: [CONV_2D]}\n")
    assert "either opset" in error.message and "bad.yaml" in error.message
    error = _bad(tmp_path, "ops: {tflite: CONV_2D, onnxx: [Conv]}\n")
    assert "field 'ops.tflite'" in error.message and "field 'ops.onnxx'" in error.message
    error = _bad(tmp_path, "supported_precisions: [int4]\n")
    assert "field 'supported_precisions.0'" in error.message and "'int8'" in error.message
    error = _bad(tmp_path, "cpu_fallback: maybe\n")
    assert "field 'cpu_fallback'" in error.message


def test_unknown_or_malformed_opset(tmp_path):
    with pytest.raises(ProfileError) as info:
        load_opset("edgetpux")
    assert "did you mean 'edgetpu'" in info.value.hint and "tflite-gpu" in info.value.hint
    bad = tmp_path / "ops.yaml"
    bad.write_text("name: mine\ndescription: x\npartitioning: first\ntflit: [ADD]\n")
    with pytest.raises(ProfileError) as info:
        load_opset(bad)
    message = info.value.message
    assert str(bad) in message and "field 'partitioning'" in message and "'any' or 'prefix'" in message
    assert "did you mean 'tflite'" in message
    profile = tmp_path / "mine.yaml"
    profile.write_text("extends: coral-edgetpu\nname: mine\ndescription: x\nopset: ops.yaml\n")  # relative to the profile
    with pytest.raises(ProfileError) as info:
        load_profile(profile)
    assert "mine.yaml: field 'opset'" in info.value.message and "partitioning" in info.value.message
    bad.write_text("name: mine\ndescription: x\ntflite: [ADD]\n")
    assert load_profile(profile).opset == str(bad)
    assert set(builtin_opsets()) >= {"edgetpu", "tflite-gpu", "qnn-htp", "nnapi", "vx-npu"}


def test_targets_cli_lists_the_catalog_and_shows_a_user_file(tmp_path):
    listed = json.loads(_cli("targets", "--json").stdout)
    assert {row["name"] for row in listed} == set(CATALOG)
    assert {"name", "device_class", "formats", "precision"} <= set(listed[0])
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: coral-edgetpu\nname: mine\ndescription: my TPU board\n")
    shown = _cli("targets", "--show", str(mine))
    assert shown.returncode == 0 and json.loads(shown.stdout)["opset"] == "edgetpu"
    mine.write_text("extends: coral-edgetpu\nname: mine\ndescription: x\nstatic_shape: true\n")
    bad = _cli("targets", "--show", str(mine))
    assert bad.returncode == 2 and "field 'static_shape'" in bad.stderr and "did you mean 'static_shapes'" in bad.stderr


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True)
