"""The format table checks itself: every package is registered and declares a consistent FORMAT, every
dotted member imports and works on the format's own artifact, and each sniffer accepts only its own files."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import edgekit.errors
import edgekit.formats
from edgekit.formats import FORMATS, all_formats, format_table, get_format
from edgekit.formats.base import ArtifactFormat, resolve
from edgekit.formats.sniff import HEAD_BYTES, detect, read_head, sniff_artifact

from . import models

FORMATS_DIR = Path(edgekit.formats.__file__).parent
MEMBERS = ("companions", "list_ops", "read_inputs", "weight_counts", "stored_precision", "trace")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("format-table")
    onnx = models.onnx_model(folder / "m.onnx")
    return {"tflite": models.tflite_model(folder / "m.tflite"), "onnx": onnx,
            "openvino": models.openvino_ir(onnx, folder / "m.xml"), "executorch": models.executorch_model(folder / "m.pte")}


def test_every_format_package_is_in_the_table():
    packages = {p.parent.name for p in FORMATS_DIR.glob("*/__init__.py")}
    assert packages == set(FORMATS) == {"tflite", "onnx", "openvino", "executorch"}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_package_declares_its_format_and_every_member_resolves(name):
    fmt = get_format(name)
    assert isinstance(fmt, ArtifactFormat) and fmt.name == name and fmt.runners
    for member in MEMBERS:
        dotted = getattr(fmt, member)
        assert dotted is None or callable(resolve(dotted)), f"{name}.{member} = {dotted}"
    for spec in fmt.runners:
        assert callable(resolve(spec.load)) and (spec.probe is None or callable(resolve(spec.probe)))
        assert spec.requires and all(r.install.startswith("pip install") for r in spec.requires)
        assert len({a.name for a in spec.accelerators}) == len(spec.accelerators)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_members_read_the_formats_own_artifact(name, artifacts):
    fmt, path = get_format(name), artifacts[name]
    assert {s.name for s in fmt.member("read_inputs")(path)} == {"x", "k"}
    assert fmt.member("stored_precision")(path) == "fp32"
    assert [op.op for op in fmt.member("list_ops")(path)] in (["CAST", "ADD"], ["Cast", "Add"], ["Convert", "Add"],
                                                                  ["dim_order_ops::_to_dim_order_copy.out", "XnnpackBackend"])
    assert sum(fmt.member("weight_counts")(path).values()) == 0  # the graph has no weights
    assert [f.name for f in fmt.files(path)] == {"tflite": ["m.tflite"], "onnx": ["m.onnx"], "openvino": ["m.xml", "m.bin"],
                                  "executorch": ["m.pte"]}[name]


@pytest.mark.parametrize(("mine", "other"), list(itertools.product(sorted(FORMATS), repeat=2)))
def test_each_sniffer_accepts_its_own_artifacts_and_rejects_the_others(mine, other, artifacts):
    path = artifacts[other]
    assert get_format(mine).sniff(read_head(path), path) is (mine == other)


def test_the_sniffer_goes_by_content_not_by_suffix(artifacts, tmp_path):
    disguised = tmp_path / "model.onnx"
    disguised.write_bytes(artifacts["tflite"].read_bytes())
    assert sniff_artifact(disguised).name == "tflite"
    for content in (b"", b"hello, world\n", b"PK\x03\x04" + bytes(60), bytes(HEAD_BYTES), b"\x1c\x00\x00\x00TFL2"):
        assert detect(content, tmp_path / "x") is None, content


def test_a_missing_companion_is_named(artifacts, tmp_path):
    xml = tmp_path / "m.xml"
    xml.write_bytes(artifacts["openvino"].read_bytes())
    with pytest.raises(edgekit.errors.ModelFileError, match="m.bin is missing beside m.xml"):
        get_format("openvino").files(xml)


def test_a_duplicate_key_raises_and_an_unknown_name_lists_the_formats():
    with pytest.raises(ValueError, match="'onnx' is registered twice"):
        format_table([("onnx", "edgekit.formats.onnx"), ("onnx", "edgekit.formats.onnx")])
    with pytest.raises(edgekit.errors.InvalidOptionError) as info:
        get_format("onx")
    assert "did you mean 'onnx'?" in info.value.hint and "tflite, onnx, openvino" in info.value.hint
    assert [f.name for f in all_formats()] == list(FORMATS)


def test_runtimes_are_chosen_by_format_and_runtime():
    onnx = get_format("onnx")
    assert [s.runtime for s in onnx.runners] == ["onnxruntime", "openvino"] and onnx.default_runner().runtime == "onnxruntime"
    tflite = get_format("tflite")
    assert [s.runtime for s in tflite.runners] == ["litert", "tflite-runtime"] and tflite.runners[1].fallback
    with pytest.raises(edgekit.errors.InvalidOptionError, match="the tflite format has no runtime 'onnxruntime'"):
        tflite.runner("onnxruntime")


def test_every_device_profile_names_a_declared_delegate_provider_and_device():
    from edgekit.profiles import list_profiles

    declared = {name: {a.name for spec in get_format(name).runners for a in spec.accelerators} for name in FORMATS}
    for profile in list_profiles():
        runtime = profile.runtime
        assert runtime.tflite_delegate in declared["tflite"] | {"none"}, profile.name
        assert runtime.onnx_execution_provider in declared["onnx"], profile.name
        assert runtime.openvino_device in declared["openvino"], profile.name
