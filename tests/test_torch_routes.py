"""PyTorch -> ONNX / OpenVINO (/ TFLite) routes on small models trained on sklearn's digits."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")
nn = torch.nn

from edgekit import metrics
from edgekit.errors import ConversionError, MissingDependencyError
from edgekit.options import QuantScheme
from edgekit.routes import RouteRequest, find_route
from edgekit.formats.runner import open_runner
from edgekit.sources import load_source

pytestmark = pytest.mark.slow  # the tests here convert or train real models

COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.98}


class DigitsCNN(nn.Module):
    """Conv, depthwise conv, batch norm, residual add, pooling and a linear head on 1x8x8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU())
        self.pointwise = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, image):
        x = self.stem(image)
        x = torch.relu(x + self.pointwise(self.depthwise(x)))
        x = self.pool(x).flatten(1)
        return self.head(x)


class DigitsSequence(nn.Module):
    """The 8 rows of a digit as a sequence: self-attention block, then an LSTM, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.lstm = nn.LSTM(16, 24, batch_first=True)
        self.head = nn.Linear(24, 10)

    def forward(self, rows):
        x = self.embed(rows)
        attended, _ = self.attention(x, x, x, need_weights=False)
        x = self.norm(x + attended)
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs))
        for start in range(0, len(xs), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xs[batch]), ys[batch]).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    data = datasets.load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8
    labels = data.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    train, held_out = order[:1400], order[1400:1600]
    return {"x_train": images[train], "y_train": labels[train], "x_test": images[held_out], "y_test": labels[held_out]}


@pytest.fixture(scope="module")
def cnn_source(digits):
    torch.manual_seed(0)
    model = _train(DigitsCNN(), digits["x_train"], digits["y_train"], epochs=8)
    return load_source(model, example_inputs=torch.zeros(1, 1, 8, 8))


@pytest.fixture(scope="module")
def sequence_source(digits):
    torch.manual_seed(0)
    model = _train(DigitsSequence(), digits["x_train"][:, 0], digits["y_train"], epochs=15)
    return load_source(model, example_inputs=torch.zeros(1, 8, 8))


def _request(source, fmt, precision, out_dir, calibration):
    return RouteRequest(
        source=source,
        precision=precision,
        scheme=QuantScheme(),
        calibration=calibration if precision == "int8" else [],
        out_dir=out_dir,
        stem=f"model_{precision}",
    ), find_route("torch", fmt, precision).load()


def _parity(source, path, fmt, feeds, labels):
    """Cosine, max abs error and top-1 agreement of the artifact vs the source; accuracies of both."""
    runner = open_runner(path, fmt)
    name_in, name_out = source.spec.inputs[0].name, source.spec.outputs[0].name
    want = np.concatenate([source.predict({name_in: f})[name_out] for f in feeds])
    got = np.concatenate([runner.run({name_in: f})[name_out] for f in feeds])
    return {
        "cosine": metrics.cosine(want, got),
        "max_abs": metrics.max_abs_error(want, got),
        "top1": metrics.top1_agreement(want, got),
        "acc_source": metrics.top1_accuracy(want, labels),
        "acc_artifact": metrics.top1_accuracy(got, labels),
    }


def _convert(source, fmt, precision, tmp_path, digits, feeds_of):
    calibration = [{source.spec.inputs[0].name: feeds_of(digits["x_train"][i : i + 1])} for i in range(0, 640, 10)]
    request, convert = _request(source, fmt, precision, tmp_path, calibration)
    output = convert(request)
    assert output.path.exists() and output.path.parent == tmp_path
    assert all(f.exists() for f in output.files)
    feeds = [feeds_of(digits["x_test"][i : i + 1]) for i in range(len(digits["x_test"]))]
    return output, _parity(source, output.path, fmt, feeds, digits["y_test"])


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_cnn_parity(cnn_source, digits, tmp_path, fmt, precision):
    output, metrics = _convert(cnn_source, fmt, precision, tmp_path, digits, lambda x: x)
    print(f"torch->{fmt} {precision}: {metrics}")
    assert metrics["acc_source"] >= 0.9  # the model really learned the digits
    assert metrics["cosine"] >= COSINE[precision]
    if precision == "int8":
        assert metrics["top1"] >= 0.95
        assert metrics["acc_artifact"] >= metrics["acc_source"] - 0.02
    else:
        assert metrics["top1"] == 1.0
        assert metrics["max_abs"] < (1e-4 if precision == "fp32" else 5e-2)
    if fmt == "onnx":
        import onnx

        graph = onnx.load(str(output.path), load_external_data=False).graph
        assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["output"]


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_attention_lstm_fp32(sequence_source, digits, tmp_path, fmt):
    _, metrics = _convert(sequence_source, fmt, "fp32", tmp_path, digits, lambda x: x[:, 0])
    print(f"torch->{fmt} attention+lstm fp32: {metrics}")
    assert metrics["acc_source"] >= 0.8
    assert metrics["cosine"] >= COSINE["fp32"] and metrics["top1"] == 1.0
    assert metrics["max_abs"] < 1e-4


@pytest.fixture(scope="module")
def file_sources(cnn_source, tmp_path_factory):
    """The trained CNN saved as TorchScript (a trusted file) and as a .pt2 with a dynamic batch (loaded safely)."""
    folder = tmp_path_factory.mktemp("cnn_files")
    example = torch.zeros(1, 1, 8, 8)
    torch.jit.trace(cnn_source.model, (example,)).save(str(folder / "cnn.pt"))
    batch = torch.export.Dim("batch", min=1, max=32)
    program = torch.export.export(cnn_source.model, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(folder / "cnn.pt2"))
    return {
        "torchscript": load_source(folder / "cnn.pt", example_inputs=example, allow_unsafe=True),
        "pt2": load_source(folder / "cnn.pt2"),
    }


@pytest.mark.parametrize("kind", ["torchscript", "pt2"])
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_file_sources_convert(file_sources, digits, tmp_path, kind, fmt):
    source = file_sources[kind]
    static = {"image": (1, 1, 8, 8)} if kind == "pt2" else {}
    request, convert = _request(source, fmt, "fp32", tmp_path, [])
    output = convert(dataclasses.replace(request, static_shapes=static))
    runner = open_runner(output.path, fmt)
    assert runner.inputs[0].name == "image" and runner.inputs[0].shape == (1, 1, 8, 8)
    feeds = [digits["x_test"][i : i + 1] for i in range(50)]
    metrics = _parity(source, output.path, fmt, feeds, digits["y_test"][:50])
    assert metrics["cosine"] >= COSINE["fp32"] and metrics["top1"] == 1.0 and metrics["max_abs"] < 1e-4


@pytest.mark.slow  # litert-torch imports jax
def test_safely_loaded_pt2_converts_to_tflite(file_sources, digits, tmp_path):
    pytest.importorskip("litert_torch")
    source = file_sources["pt2"]
    request, convert = _request(source, "tflite", "fp32", tmp_path, [])
    output = convert(dataclasses.replace(request, static_shapes={"image": (1, 1, 8, 8)}))
    feeds = [digits["x_test"][i : i + 1] for i in range(50)]
    metrics = _parity(source, output.path, "tflite", feeds, digits["y_test"][:50])
    assert metrics["cosine"] >= COSINE["fp32"] and metrics["top1"] == 1.0 and metrics["max_abs"] < 1e-4


def test_tflite_route_without_litert_torch_names_the_extra(cnn_source, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real_find_spec(name, *a))
    monkeypatch.delitem(sys.modules, "litert_torch", raising=False)  # imported by an earlier test of this process
    with pytest.raises(MissingDependencyError) as info:  # from the route's declared requirements, before any work
        _request(cnn_source, "tflite", "fp32", tmp_path, [])
    assert "converting torch to tflite needs the Python module 'litert_torch'" in info.value.message
    assert info.value.hint == "pip install 'edgekit[litert-torch]'"


@pytest.mark.parametrize("precision", ["fp32", "fp16", "dynamic", "int8"])
def test_cnn_tflite_parity(cnn_source, digits, tmp_path, precision):
    pytest.importorskip("litert_torch")
    output, metrics = _convert(cnn_source, "tflite", precision, tmp_path, digits, lambda x: x)
    print(f"torch->tflite {precision}: {metrics}")
    assert [s.name for s in output.inputs] == ["image"] and [s.name for s in output.outputs] == ["output"]
    assert metrics["cosine"] >= {**COSINE, "dynamic": 0.98}[precision]
    assert metrics["top1"] >= (0.95 if precision in ("int8", "dynamic") else 1.0)
    assert metrics["acc_artifact"] >= metrics["acc_source"] - 0.02
    if precision == "int8":  # litert-torch folds the quantize ops into the model's inputs and outputs
        assert output.inputs[0].dtype == "int8" and output.inputs[0].scale
