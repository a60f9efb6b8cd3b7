"""PyTorch sources: in-memory modules, TorchScript / .pt2 archives, and the safe-loading policy."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekit.errors import InvalidOptionError, ModelFileError, UnsafeModelError
from edgekit.sources import load_source


class TwoInputNet(nn.Module):
    """Conv features of an image scaled by a per-sample vector; returns (logits, features)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, image, scale):
        features = torch.relu(self.bn(self.conv(image))).mean(dim=(2, 3)) * scale
        return self.fc(features), features


class DictNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, tokens, mask):
        hidden = self.fc(tokens * mask)
        return {"logits": hidden, "probs": torch.softmax(hidden, dim=-1)}


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class WritesMarker:
    """Unpickling this creates the file ``path``: proof that a loader ran code from a pickle."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A TorchScript file, a .pt2 file with a dynamic batch, and the module they came from."""
    folder = tmp_path_factory.mktemp("torch_files")
    torch.manual_seed(0)
    module = TinyNet().eval()
    example = torch.randn(2, 1, 6, 6)
    script = folder / "tiny.pt"
    torch.jit.trace(module, (example,)).save(str(script))
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    pt2 = folder / "tiny.pt2"
    torch.export.save(program, str(pt2))
    return {"module": module, "example": example, "script": script, "pt2": pt2, "folder": folder}


def _feed(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


# ---------------------------------------------------------------------------------------------- in-memory


def test_tuple_inputs_and_tuple_outputs():
    torch.manual_seed(0)
    module = TwoInputNet()
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    source = load_source(module, example_inputs=(torch.randn(2, 3, 8, 8), torch.ones(2, 8)))

    assert [s.name for s in source.spec.inputs] == ["image", "scale"]
    assert [s.name for s in source.spec.outputs] == ["output_0", "output_1"]
    assert source.spec.inputs[0].shape == (2, 3, 8, 8) and source.spec.inputs[0].layout == "NCHW"
    assert source.spec.inputs[1].layout == "NC" and source.spec.inputs[1].dtype == "float32"
    assert source.spec.outputs[0].shape == (2, 5)
    assert source.spec.task == "other"  # two outputs: not the single-output classifier shape
    # the user's module is untouched: still training, same weights, not the object edgekit runs
    assert module.training and not source.model.training and source.model is not module
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())

    image, scale = _feed((2, 3, 8, 8), (2, 8))
    got = source.predict({"image": image, "scale": scale})
    with torch.no_grad():
        want = module.eval()(torch.from_numpy(image), torch.from_numpy(scale))
    np.testing.assert_allclose(got["output_0"], want[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["output_1"], want[1].numpy(), rtol=1e-5, atol=1e-6)


def test_dict_inputs_follow_forward_order_and_dict_outputs_keep_keys():
    module = DictNet()
    source = load_source(module, example_inputs={"mask": np.ones((1, 6), np.float32), "tokens": torch.randn(1, 6)})
    assert [s.name for s in source.spec.inputs] == ["tokens", "mask"]
    assert [s.name for s in source.spec.outputs] == ["logits", "probs"]
    tokens, mask = _feed((1, 6), (1, 6))
    out = source.predict({"tokens": tokens, "mask": mask})
    np.testing.assert_allclose(out["probs"].sum(), 1.0, rtol=1e-5)


def test_dict_with_unknown_input_name_is_refused():
    with pytest.raises(InvalidOptionError, match="tokns"):
        load_source(DictNet(), example_inputs={"tokns": torch.randn(1, 6), "mask": torch.ones(1, 6)})


def test_single_tensor_and_numpy_example_make_a_classifier():
    source = load_source(TinyNet(), example_inputs=np.zeros((1, 1, 6, 6), np.float32))
    assert [s.name for s in source.spec.inputs] == ["x"]
    assert [s.name for s in source.spec.outputs] == ["output"]
    assert source.spec.task == "classifier" and source.spec.kind == "in-memory"


def test_missing_example_inputs_names_the_option():
    with pytest.raises(InvalidOptionError) as info:
        load_source(TinyNet())
    assert "example_inputs" in info.value.message and "example_inputs=" in info.value.hint


def test_nan_parameter_is_named():
    module = TinyNet()
    with torch.no_grad():
        module.fc.weight[0, 0] = float("nan")
    with pytest.raises(ModelFileError, match=r"fc\.weight"):
        load_source(module, example_inputs=torch.zeros(1, 1, 6, 6))


def test_exported_program_is_built_on_demand():
    source = load_source(TinyNet(), example_inputs=torch.zeros(1, 1, 6, 6))
    assert source._exported_program is None
    assert isinstance(source.exported_program, torch.export.ExportedProgram)
    assert source.exported_program is source.exported_program


# ---------------------------------------------------------------------------------------------- files


def test_torchscript_refused_by_default(files):
    with pytest.raises(UnsafeModelError) as info:
        load_source(files["script"], example_inputs=files["example"])
    assert "TorchScript" in info.value.message
    assert "allow_unsafe=True" in info.value.hint and "--allow-unsafe" in info.value.hint


def test_torchscript_accepted_with_allow_unsafe(files):
    source = load_source(files["script"], example_inputs=files["example"], allow_unsafe=True)
    assert source.spec.kind == "torchscript" and source.spec.sha256
    assert [s.name for s in source.spec.inputs] == ["x"] and source.spec.inputs[0].shape == (2, 1, 6, 6)
    (x,) = _feed((2, 1, 6, 6))
    with torch.no_grad():
        want = files["module"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(source.predict({"x": x})["output"], want, rtol=1e-5, atol=1e-6)


def test_torchscript_needs_example_inputs(files):
    with pytest.raises(InvalidOptionError, match="example_inputs"):
        load_source(files["script"], allow_unsafe=True)


@pytest.mark.parametrize("allow_unsafe", [False, True])
def test_pt2_loads_by_default_and_with_allow_unsafe(files, allow_unsafe):
    source = load_source(files["pt2"], allow_unsafe=allow_unsafe)  # shapes come from the program itself
    assert source.spec.kind == "pt2"
    assert source.spec.inputs[0].name == "x" and source.spec.inputs[0].shape == (None, 1, 6, 6)
    assert source.spec.outputs[0].shape == (None, 3)
    (x,) = _feed((5, 1, 6, 6))
    with torch.no_grad():
        want = files["module"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(source.predict({"x": x})["output"], want, rtol=1e-5, atol=1e-6)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("kind", ["torchscript", "pt2"])
def test_crafted_archive_with_code_is_refused_and_runs_nothing(tmp_path, kind):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(WritesMarker(marker), protocol=2)
    if kind == "torchscript":
        members = {"m/code/__torch__.py": b"", "m/data.pkl": payload, "m/version": b"3\n"}
    else:
        members = {
            "m/archive_format": b"pt2",
            "m/archive_version": b"0",
            "m/models/model.json": b"{}",
            "m/data/sample_inputs/model.pt": payload,
        }
    crafted = _zip(tmp_path / f"crafted.{'pt' if kind == 'torchscript' else 'pt2'}", members)
    with pytest.raises(UnsafeModelError, match="allow_unsafe"):
        load_source(crafted, example_inputs=torch.zeros(1, 3))
    assert not marker.exists()


def test_path_traversal_member_refused_even_with_allow_unsafe(tmp_path):
    marker = tmp_path / "pwned"
    crafted = _zip(
        tmp_path / "escape.pt",
        {"m/code/__torch__.py": b"", "m/data.pkl": pickle.dumps(WritesMarker(marker)), "m/../../evil.txt": b"x"},
    )
    with pytest.raises(UnsafeModelError, match="unsafe path"):
        load_source(crafted, example_inputs=torch.zeros(1, 3), allow_unsafe=True)
    assert not marker.exists()


def test_state_dict_checkpoint_is_refused_with_guidance(tmp_path):
    zipped = tmp_path / "weights.pt"
    torch.save(TinyNet().state_dict(), zipped)
    with pytest.raises(UnsafeModelError) as info:
        load_source(zipped, allow_unsafe=True)
    assert "torch.save checkpoint" in info.value.message
    assert "weights_only=True" in info.value.hint and "example_inputs=" in info.value.hint

    legacy = tmp_path / "legacy.pt"
    torch.save(TinyNet().state_dict(), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeModelError, match="pickle"):
        load_source(legacy)


@pytest.mark.parametrize("allow_unsafe", [False, True])
def test_truncated_archive_is_a_model_file_error(files, tmp_path, allow_unsafe):
    data = files["script"].read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_source(truncated, example_inputs=files["example"], allow_unsafe=allow_unsafe)


def test_corrupt_member_fails_its_checksum(files, tmp_path):
    data = bytearray(files["pt2"].read_bytes())
    with zipfile.ZipFile(files["pt2"]) as archive:
        info = next(i for i in archive.infolist() if "weights/weight_0" in i.filename)
    name_len, extra_len = np.frombuffer(bytes(data[info.header_offset + 26 : info.header_offset + 30]), "<u2")
    start = info.header_offset + 30 + int(name_len) + int(extra_len)  # the member's first stored byte
    for offset in range(start, start + 4):
        data[offset] ^= 0xFF
    corrupt = tmp_path / "corrupt.pt2"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_source(corrupt, allow_unsafe=True)


def test_nan_in_torchscript_weights_is_named(tmp_path):
    module = TinyNet().eval()
    with torch.no_grad():
        module.conv.bias[1] = float("inf")
    path = tmp_path / "nan.pt"
    torch.jit.trace(module, (torch.zeros(1, 1, 6, 6),)).save(str(path))
    with pytest.raises(ModelFileError, match=r"conv\.bias"):
        load_source(path, example_inputs=torch.zeros(1, 1, 6, 6), allow_unsafe=True)
