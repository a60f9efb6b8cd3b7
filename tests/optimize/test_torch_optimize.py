"""The PyTorch optimization backend on held-out digits: pruning, QAT exported as int8, distillation, bad input."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekit.errors import ConversionError, InvalidOptionError  # noqa: E402
from edgekit.optimize import torch as backend  # noqa: E402
from edgekit.optimize.backend import TrainingSet  # noqa: E402
from edgekit.optimize.steps import distill, prune, qat  # noqa: E402
from edgekit.options import QuantScheme  # noqa: E402
from edgekit.routes import RouteRequest, find_route  # noqa: E402
from edgekit.formats.runner import open_runner  # noqa: E402
from edgekit.sources import load_source  # noqa: E402
from edgekit.weights import quantized_weight_fraction  # noqa: E402

pytestmark = pytest.mark.slow  # the tests here convert or train real models

SEED = int(os.environ.get("EDGEKIT_TEST_SEED", "0"))  # distillation was checked on seeds 0, 1 and 2


class DigitsCNN(nn.Module):
    """conv 32 -> conv 64 -> global average pooling -> linear 10, on 1x8x8 digits."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.head = nn.Linear(2 * width, 10)

    def forward(self, image):
        x = torch.relu(self.bn1(self.conv1(image)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


class Gain(nn.Module):
    """A layer with its own parameter that neither torch-pruning nor magnitude pruning knows."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        return x * self.gain


class WithGain(DigitsCNN):
    def __init__(self) -> None:
        super().__init__(8)
        self.scale = Gain(8)

    def forward(self, image):
        x = self.scale(torch.relu(self.bn1(self.conv1(image))))
        return self.head(torch.relu(self.bn2(self.conv2(x))).mean((2, 3)))


class Recurrent(nn.Module):
    """Digit rows through an LSTM: NNCF leaves the LSTM's weights in float."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, image):
        out, _ = self.lstm(image[:, 0])
        return self.head(out[:, -1])


def _quiet(fraction: float, message: str) -> None:
    del fraction, message


def _accuracy(model, data: TrainingSet) -> float:
    return float(np.mean(backend.predict(model, data.x_val).argmax(1) == data.y_val))


def _state(model) -> dict:
    return {name: value.clone() for name, value in model.state_dict().items()}


def _unchanged(model, state: dict) -> bool:
    current = model.state_dict()
    return current.keys() == state.keys() and all(torch.equal(current[k], v) for k, v in state.items())


@pytest.fixture(scope="module")
def data() -> TrainingSet:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    x_train, x_val, y_train, y_val = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.25, stratify=digits.target, random_state=0)
    return TrainingSet(x_train, y_train, x_val, y_val, "classification", from_logits=True, num_classes=10)


@pytest.fixture(scope="module")
def trained(data):
    torch.manual_seed(0)
    model = backend.fit(backend.prepare(DigitsCNN()), data, epochs=10, learning_rate=3e-3, batch_size=32, progress=_quiet)
    return model, _accuracy(model, data)


@pytest.fixture(scope="module")
def qat_model(trained, data):
    model, _ = trained
    state = _state(model)
    quantized = backend.qat(model, qat(epochs=2), data, _quiet)
    assert _unchanged(model, state)
    return quantized


def _weight_sparsity(model) -> float:
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def test_unstructured_pruning_reaches_the_sparsity_on_a_plain_module(trained, data):
    model, fp32 = trained
    state = _state(model)
    pruned = backend.prune(model, prune(0.6, epochs=2), data, _quiet)
    assert _unchanged(model, state)
    assert abs(_weight_sparsity(pruned) - 0.6) < 0.005
    assert not any(name.endswith("_orig") or name.endswith("_mask") for name in pruned.state_dict())  # prune.remove'd
    stats = backend.stats(pruned)
    assert stats.parameters == backend.stats(model).parameters and 0.55 < stats.sparsity < 0.6
    assert _accuracy(pruned, data) >= fp32 - 0.02
    kept = backend.prune(model, prune(0.6, epochs=1, schedule="constant", exclude=("head",)), data, _quiet)
    assert int((kept.head.weight == 0).sum()) == 0 and _weight_sparsity(kept) > 0.55


def _route(source, fmt: str, precision: str, out_dir, stem: str, calibration=()):
    request = RouteRequest(source=source, precision=precision, scheme=QuantScheme(), calibration=list(calibration),
                           out_dir=out_dir, stem=stem)
    return find_route("torch", fmt, precision).load()(request)


def _artifact_accuracy(path, fmt: str, data: TrainingSet) -> float:
    runner = open_runner(path, fmt)
    outputs = [runner.run({"image": data.x_val[i : i + 1]})["output"] for i in range(len(data.y_val))]
    return float(np.mean(np.concatenate(outputs).argmax(1) == data.y_val))


def _latency(path, x: np.ndarray) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        session.run(None, {"image": x})
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def test_structured_pruning_removes_channels_and_builds_a_smaller_faster_onnx(trained, data, tmp_path):
    model, fp32 = trained
    state = _state(model)
    pruned = backend.prune(model, prune(0.5, structured=True, epochs=4), data, _quiet)
    assert _unchanged(model, state)
    assert (pruned.conv1.out_channels, pruned.conv2.out_channels, pruned.head.out_features) == (16, 32, 10)
    before, after = backend.stats(model), backend.stats(pruned)
    assert after.parameters < 0.3 * before.parameters and after.weight_bytes == 4 * after.parameters
    assert _accuracy(pruned, data) >= fp32 - 0.02
    example = torch.from_numpy(data.x_val[:64])  # batch 64: the latency compared is compute, not call overhead
    sizes, latencies = {}, {}
    for name, net in (("full", model), ("pruned", pruned)):
        output = _route(load_source(net, example_inputs=example), "onnx", "fp32", tmp_path, name)
        sizes[name] = output.path.stat().st_size
        latencies[name] = _latency(output.path, data.x_val[:64])
    assert sizes["pruned"] < 0.35 * sizes["full"]
    assert latencies["pruned"] < 0.8 * latencies["full"], latencies


def test_qat_model_exports_int8_qdq_onnx_and_openvino_within_a_point(qat_model, trained, data, tmp_path):
    import onnx

    _, fp32 = trained
    assert _accuracy(qat_model, data) >= fp32 - 0.01
    source = load_source(qat_model, example_inputs=torch.from_numpy(data.x_val[:1]))
    source.fake_quantized = True
    onnx_out = _route(source, "onnx", "int8", tmp_path, "qat")
    graph = onnx.load(str(onnx_out.path)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") >= 4 and ops.count("DequantizeLinear") >= 7  # activations + 3 weights
    int8 = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2}  # weights
    assert len(int8) == 3 and any("quantization-aware training" in note for note in onnx_out.notes)
    assert quantized_weight_fraction(onnx_out.path, "onnx") > 0.9
    assert _artifact_accuracy(onnx_out.path, "onnx", data) >= fp32 - 0.01
    ov_out = _route(source, "openvino", "int8", tmp_path, "qat")
    assert "quantization-aware" in " ".join(ov_out.notes)
    assert quantized_weight_fraction(ov_out.path, "openvino") > 0.9
    assert _artifact_accuracy(ov_out.path, "openvino", data) >= fp32 - 0.01


def test_qat_model_refuses_float_builds_and_tflite(qat_model, data, tmp_path):
    source = load_source(qat_model, example_inputs=torch.from_numpy(data.x_val[:1]))
    source.fake_quantized = True
    with pytest.raises(ConversionError, match="int8 artifacts only"):
        _route(source, "onnx", "fp32", tmp_path, "float")
    with pytest.raises(ConversionError, match="int8 artifacts only"):
        _route(source, "openvino", "fp16", tmp_path, "float")
    with pytest.raises(ConversionError, match="litert-torch cannot carry the ranges") as error:
        _route(source, "tflite", "int8", tmp_path, "qat")
    assert "onnx or openvino" in error.value.hint


def test_distilled_student_beats_the_same_student_without_teacher(trained, data):
    teacher, _ = trained
    state = _state(teacher)
    rng = np.random.default_rng(SEED)
    few = rng.choice(len(data.y_train), 100, replace=False)  # a small labelled subset: where a teacher helps
    subset = TrainingSet(data.x_train[few], data.y_train[few], data.x_val, data.y_val, "classification", True, 10)
    step = distill(student_width=0.25, student_init="random", epochs=100, learning_rate=1e-2, batch_size=16)
    student = backend.derive_student(teacher, step, subset)
    assert backend.stats(student).parameters <= backend.stats(teacher).parameters / 2
    distilled = backend.distill(student, teacher, step, subset, _quiet)
    alone = backend.fit(student, subset, step.epochs, step.learning_rate, step.batch_size, _quiet)
    assert _unchanged(teacher, state)
    assert _accuracy(distilled, data) >= _accuracy(alone, data) + 0.02, (_accuracy(distilled, data), _accuracy(alone, data))


def test_distill_refuses_a_student_with_other_outputs(trained, data):
    teacher, _ = trained
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    with pytest.raises(InvalidOptionError, match=r"teacher's output shape \(10,\) differs from the student's \(5,\)"):
        backend.distill(other, teacher, distill(epochs=1), data, _quiet)


def test_layers_that_cannot_be_pruned_are_named(data):
    model = backend.prepare(WithGain())
    state = _state(model)
    with pytest.raises(InvalidOptionError, match=r"torch-pruning cannot remove channels from these layers: scale \(Gain\)"):
        backend.prune(model, prune(0.5, structured=True, epochs=0), data, _quiet)
    with pytest.raises(InvalidOptionError, match=r"magnitude pruning cannot prune these layers: scale \(Gain\)"):
        backend.prune(model, prune(0.5, epochs=1), data, _quiet)
    with pytest.raises(InvalidOptionError, match="exclude names module.* the model does not have: scal"):
        backend.prune(model, prune(0.5, epochs=1, exclude=("scal",)), data, _quiet)
    assert _unchanged(model, state)
    excluded = backend.prune(model, prune(0.5, epochs=1, exclude=("scale",)), data, _quiet)
    assert int((excluded.scale.gain == 0).sum()) == 0 and _weight_sparsity(excluded) > 0.45


def test_layers_nncf_cannot_quantize_are_named(data):
    model = backend.prepare(Recurrent())
    state = _state(model)
    with pytest.raises(InvalidOptionError, match=r"NNCF cannot quantize the weights of these layers: lstm \(LSTM\)") as error:
        backend.qat(model, qat(epochs=1), data, _quiet)
    assert "qat(exclude=[...])" in error.value.hint
    assert _unchanged(model, state)
    kept = backend.qat(model, qat(epochs=1, exclude=("lstm",)), data, _quiet)
    assert backend.predict(kept, data.x_val[:4]).shape == (4, 10)
