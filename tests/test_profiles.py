"""Device profiles load, extend each other, and bad files name the file and the field at fault."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.errors import ProfileError
from edgekit.profiles import builtin_names, list_profiles, load_profile


def test_builtin_profiles_load():
    names = builtin_names()
    assert {"cpu-x86", "cpu-arm64"} <= set(names)
    for profile in list_profiles():
        assert profile.formats, profile.name
    x86 = load_profile("cpu-x86")
    assert x86.device_class == "cpu" and x86.runtime.openvino_device == "CPU"
    assert x86.quantization.per_channel is True


def test_unknown_target_suggests_the_nearest(tmp_path):
    with pytest.raises(ProfileError) as info:
        load_profile("cpu-x68")
    assert "unknown target 'cpu-x68'" in info.value.message
    assert "did you mean 'cpu-x86'" in info.value.hint


def test_user_profile_extends_a_builtin(tmp_path):
    path = tmp_path / "my-board.yaml"
    path.write_text("extends: cpu-arm64\nname: my-board\ndescription: my board\nprecision: int8\nquantization: {io_dtype: int8}\n")
    profile = load_profile(path)
    assert profile.name == "my-board" and profile.precision == "int8"
    assert profile.quantization.io_dtype == "int8" and profile.quantization.per_channel is True  # merged
    assert profile.formats == ("tflite", "onnx")  # inherited


def test_bad_field_names_file_field_and_choices(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: cpu-x86\nname: bad\ndescription: x\ndevice_class: tpu\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in info.value.message
    assert "field 'device_class'" in info.value.message and "'cpu', 'gpu' or 'npu'" in info.value.message


def test_typo_in_field_name_is_caught(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("extends: cpu-x86\nname: typo\ndescription: x\nprecison: int8\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "field 'precison'" in info.value.message and "did you mean 'precision'" in info.value.message


def test_wrong_type_and_yaml_tags_are_refused(tmp_path):
    bad_type = tmp_path / "type.yaml"
    bad_type.write_text("extends: cpu-x86\nname: t\ndescription: x\nstatic_shapes: [1, 2]\n")
    with pytest.raises(ProfileError, match="static_shapes"):
        load_profile(bad_type)
    code = tmp_path / "code.yaml"
    code.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(code)
    assert not Path("pwned").exists()


def test_extends_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ProfileError, match="loop"):
        load_profile(tmp_path / "a.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True)


def test_cli_targets_json_and_show(tmp_path):
    done = _cli("targets", "--json")
    assert done.returncode == 0
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["cpu-x86"]["device_class"] == "cpu" and "openvino" in rows["cpu-x86"]["formats"]
    shown = _cli("targets", "--show", "cpu-arm64")
    assert shown.returncode == 0 and json.loads(shown.stdout)["layout"] == "NHWC"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: y\ndevice_class: cpu\nformats: [tflite, coreml]\n")
    failed = _cli("targets", "--show", str(bad))
    assert failed.returncode == 2
    assert "field 'formats.1'" in failed.stderr and "Traceback" not in failed.stderr
