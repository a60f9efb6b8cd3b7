"""The manifest read back: ``edgekit.load_build`` (the one parser), and clear errors for what is not a manifest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import edgekit
from edgekit.errors import ManifestError, ModelFileError
from edgekit.manifest import MANIFEST_NAME, SCHEMA_VERSION, read_manifest, write_manifest
from edgekit.specs import Artifact, Build, ModelSource, TensorSpec, ValidationResult

SPEC = TensorSpec(name="x", shape=(None, 4), dtype="float32")


def _build(folder: Path) -> Build:
    (folder / "m_fp32.onnx").write_bytes(b"onnx")
    artifact = Artifact(format="onnx", precision="fp32", route="onnx_onnx", path=str(folder / "m_fp32.onnx"),
                        files=(str(folder / "m_fp32.onnx"),), size_bytes=4, sha256="0" * 64, inputs=(SPEC,), outputs=(SPEC,),
                        validation=ValidationResult(status="passed", samples=16, cosine=1.0), convert_seconds=0.5)
    source = ModelSource(framework="onnx", kind="onnx", path="m.onnx", inputs=(SPEC,), outputs=(SPEC,))
    build = Build(output_dir=str(folder), manifest_path=str(folder / MANIFEST_NAME), source=source, target="cpu-x86",
                  artifacts=(artifact,))
    write_manifest(build, {"plan": {"target": "cpu-x86"}, "run": {}})
    return build


def test_a_build_reads_back_equal_from_its_folder_or_its_manifest(tmp_path):
    build = _build(tmp_path)
    assert edgekit.load_build(tmp_path) == build
    assert edgekit.load_build(tmp_path / MANIFEST_NAME) == build
    assert read_manifest(tmp_path)["schema_version"] == SCHEMA_VERSION == 2


def test_a_moved_build_folder_points_at_its_own_files(tmp_path):
    (tmp_path / "a").mkdir()
    _build(tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")
    (artifact,) = edgekit.load_build(tmp_path / "b").artifacts
    assert artifact.path == str(tmp_path / "b" / "m_fp32.onnx") and artifact.files == (artifact.path,)


def test_entries_cannot_point_outside_the_folder(tmp_path):
    _build(tmp_path)
    document = json.loads((tmp_path / MANIFEST_NAME).read_text())
    document["artifacts"][0]["path"] = "../../etc/passwd"
    document["artifacts"][0]["files"] = ["/etc/passwd"]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(document))
    (artifact,) = edgekit.load_build(tmp_path).artifacts
    assert artifact.path == str(tmp_path / "passwd") and artifact.files == (str(tmp_path / "passwd"),)


@pytest.mark.parametrize(("content", "words"), [
    (None, "does not exist"),
    ("{not json", "is not a readable manifest"),
    ('{"name": "some other tool"}', "is not an edgekit manifest"),
    ('[1, 2]', "is not an edgekit manifest"),
    ('{"schema_version": 99, "artifacts": []}', "schema version 99"),
    ('{"schema_version": 2, "artifacts": [{"format": "onnx"}]}', "does not describe a build"),
    ('{"schema_version": 2, "artifacts": [], "target": "x"}', "does not describe a build"),
])
def test_what_is_not_a_manifest_is_a_clear_error(tmp_path, content, words):
    if content is not None:
        (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(ManifestError) as info:
        edgekit.load_build(tmp_path)
    assert words in info.value.message and info.value.hint
    assert isinstance(info.value, ModelFileError) and info.value.exit_code == 2


def test_schema_1_manifests_are_still_read(tmp_path):
    build = _build(tmp_path)
    document = json.loads((tmp_path / MANIFEST_NAME).read_text())
    document.update(schema_version=1, config={"target": "cpu-x86", "requested": {}, "effective": {}})
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(document))
    assert edgekit.load_build(tmp_path) == build
