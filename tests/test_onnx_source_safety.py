"""Loading ONNX files safely: hostile external-data locations, damaged files, and what the spec reports.

An audit hook records every file Python opens while a hostile model is loaded, to show that nothing
outside the model's folder is read before the model is refused.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import ModelFileError, UnsafeModelError
from edgekit.sources import load_source
from edgekit.sources.onnx import external_data_files

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def _load_watching(path: Path, outside: Path):
    """load_source(path), failing the test if any file under ``outside`` was opened."""
    global _OPENED
    _OPENED = []
    try:
        return load_source(path)
    finally:
        opened, _OPENED = _OPENED, None
        touched = [p for p in opened if os.path.realpath(p).startswith(str(outside))]
        assert not touched, f"files outside the model's folder were opened: {touched}"


def _model(weight_rows: int = 16):
    """A Gemm + Softmax classifier with real-looking weights, 64 features -> 10 classes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (64, 10)).astype(np.float32)
    b = rng.normal(0, 0.1, (10,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["z"]), helper.make_node("Softmax", ["z"], ["probs"], axis=1)],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save_external(folder: Path, location: str = "weights.bin") -> Path:
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save(_model(), path, save_as_external_data=True, all_tensors_to_one_file=True, location=location, size_threshold=0)
    return path


def _set_external(path: Path, tensor: str, **entries: str) -> None:
    """Rewrite the external-data entries of ``tensor`` in the model file (the data file is untouched)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    for init in model.graph.initializer:
        if init.name == tensor:
            current = {e.key: e.value for e in init.external_data}
            current.update(entries)
            del init.external_data[:]
            for key, value in current.items():
                init.external_data.add(key=key, value=value)
    onnx.save(model, path)


@pytest.fixture()
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(model folder, an outside folder holding secret.bin)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(np.arange(1024, dtype=np.float32).tobytes())
    return tmp_path / "model", outside


# ---------------------------------------------------------------- hostile external data


def test_parent_directory_location_is_refused(layout):
    folder, outside = layout
    path = _save_external(folder)
    _set_external(path, "w", location="../outside/secret.bin", offset="0", length="2560")
    with pytest.raises(UnsafeModelError, match=r"tensor 'w'.*\.\./outside/secret\.bin.*'\.\.'") as info:
        _load_watching(path, outside)
    assert "unsafe" in info.value.message and info.value.hint


def test_absolute_location_is_refused(layout):
    folder, outside = layout
    path = _save_external(folder)
    _set_external(path, "w", location=str(outside / "secret.bin"), offset="0", length="2560")
    with pytest.raises(UnsafeModelError, match=r"tensor 'w'.*absolute path"):
        _load_watching(path, outside)


def test_symlink_leaving_the_folder_is_refused(layout):
    folder, outside = layout
    path = _save_external(folder)
    (folder / "weights.bin").unlink()
    (folder / "weights.bin").symlink_to(outside / "secret.bin")
    with pytest.raises(UnsafeModelError, match=r"tensor '[wb]'.*outside the model's folder"):
        _load_watching(path, outside)


def test_symlinked_model_folder_inside_is_fine(tmp_path):
    path = _save_external(tmp_path / "real")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    source = load_source(tmp_path / "alias" / "model.onnx")
    assert source.predict({"x": np.ones((1, 64), np.float32)})["probs"].shape == (1, 10)
    assert external_data_files(path) == [(tmp_path / "real" / "weights.bin").resolve()]


def test_hard_link_is_refused(layout):
    folder, outside = layout
    path = _save_external(folder)
    os.link(folder / "weights.bin", outside / "link.bin")  # the data file now has a second name elsewhere
    with pytest.raises(UnsafeModelError, match="hard link"):
        _load_watching(path, outside)


def test_length_beyond_the_data_file_is_refused_before_reading(layout):
    folder, outside = layout
    path = _save_external(folder)
    _set_external(path, "w", length=str(1 << 40))
    with pytest.raises(UnsafeModelError, match=r"tensor 'w' declares 1099511627776 bytes.*beyond the end"):
        _load_watching(path, outside)


def test_offset_beyond_the_data_file_is_refused(layout):
    folder, outside = layout
    path = _save_external(folder)
    size = (folder / "weights.bin").stat().st_size
    _set_external(path, "b", offset=str(size), length="40")
    with pytest.raises(UnsafeModelError, match="beyond the end"):
        _load_watching(path, outside)


def test_length_not_matching_the_shape_is_a_model_file_error(layout):
    folder, outside = layout
    path = _save_external(folder)
    _set_external(path, "b", offset="0", length="8")
    with pytest.raises(ModelFileError, match=r"tensor 'b' has shape \[10\] \(40 bytes\).*8 bytes"):
        _load_watching(path, outside)


def test_missing_data_file_is_a_model_file_error(layout):
    folder, outside = layout
    path = _save_external(folder)
    (folder / "weights.bin").unlink()
    with pytest.raises(ModelFileError, match="weights.bin.*missing"):
        _load_watching(path, outside)


def test_folder_as_data_file_is_refused(layout):
    folder, outside = layout
    path = _save_external(folder)
    (folder / "sub").mkdir()
    _set_external(path, "w", location="sub")
    with pytest.raises(UnsafeModelError, match="not a regular file"):
        _load_watching(path, outside)


def test_valid_external_data_loads_and_is_hashed(tmp_path):
    (tmp_path / "m" / "data").mkdir(parents=True)
    path = _save_external(tmp_path / "m", location="data/weights.bin")
    source = load_source(path)
    data = tmp_path / "m" / "data" / "weights.bin"
    assert external_data_files(path) == [data.resolve()]
    assert source.spec.size_bytes == path.stat().st_size + data.stat().st_size
    probs = source.predict({"x": np.ones((2, 64), np.float32)})["probs"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    first = source.spec.sha256
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert load_source(path).spec.sha256 != first  # the data file is part of the hash


# ---------------------------------------------------------------- damaged files


def test_text_file_named_onnx(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match="text file"):
        load_source(path)


def test_empty_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_source(path)


def test_truncated_file(tmp_path):
    import onnx

    whole = tmp_path / "whole.onnx"
    onnx.save(_model(), whole)
    path = tmp_path / "model.onnx"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(ModelFileError, match=r"model\.onnx is not a valid ONNX model.*: \S"):
        load_source(path)


def test_garbage_with_an_onnx_looking_first_byte(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08" + noise)  # the content sniffer reads protobuf fields, not the first byte
    with pytest.raises(ModelFileError, match="is not a model edgekit recognises"):
        load_source(path)
    path.write_bytes(b"\x08\x08\x3a\xf0\x1e" + noise)  # ir_version 8, then a graph field over noise
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        load_source(path)


def test_structurally_invalid_graph_fails_the_checker(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])], "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ModelFileError, match=r"not a valid ONNX model \(onnx.checker\)"):
        load_source(path)


def test_nan_weights_are_refused(tmp_path):
    import onnx
    from onnx import numpy_helper

    model = _model()
    w = numpy_helper.to_array(model.graph.initializer[0]).copy()
    w[3, 2] = np.nan
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "w"))
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelFileError, match=r"NaN.*'w'"):
        load_source(path)


def test_in_memory_model_with_unloaded_external_data(tmp_path):
    import onnx

    path = _save_external(tmp_path / "m")
    with pytest.raises(ModelFileError, match="external data"):
        load_source(onnx.load(path, load_external_data=False))


# ---------------------------------------------------------------- spec


def test_spec_of_old_style_model_with_initializers_as_inputs(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    model = _model()
    model.graph.input.extend([
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [64, 10]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [10]),
    ])
    model.graph.input[0].type.tensor_type.shape.dim[0].Clear()  # an unset dimension
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    spec = load_source(path).spec
    assert [(t.name, t.shape, t.dtype, t.layout) for t in spec.inputs] == [("x", (None, 64), "float32", "NC")]
    assert [(t.name, t.shape) for t in spec.outputs] == [("probs", (None, 10))]
    assert spec.task == "classifier" and spec.kind == "onnx" and spec.size_bytes == path.stat().st_size
    assert len(spec.sha256) == 64


def test_task_is_other_for_a_non_classifier(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Cast", ["y"], ["mask"], to=TensorProto.BOOL)],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, ["n", 3, "h", "w"])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    spec = load_source(path).spec
    assert spec.task == "other"
    assert spec.inputs[0].shape == (None, 3, None, None) and spec.inputs[0].layout == "NCHW"
    assert [t.dtype for t in spec.outputs] == ["float32", "bool"]


def test_import_edgekit_sources_onnx_is_light():
    import subprocess

    code = "import sys, edgekit.sources.onnx; print(any(m in sys.modules for m in ('onnx', 'onnxruntime')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_watcher_sees_python_opens(layout):
    folder, _ = layout
    path = _save_external(folder)
    with pytest.raises(AssertionError, match="outside the model's folder were opened"):
        _load_watching(path, folder)  # the model's own folder counts as "outside" here: its files are opened
