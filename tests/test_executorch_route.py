"""PyTorch -> ExecuTorch (.pte, XNNPACK): round-trip parity of a CNN, an LSTM and a transformer block at fp32
and int8, rechecked here in the ExecuTorch runtime on fresh inputs; a .pte that does not load is a failed
route; profiling, the partition report as check findings, fp16 refused, the missing-extra message."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")
nn = torch.nn

import edgekit
from edgekit.errors import UnsupportedRouteError
from edgekit.formats import get_format
from edgekit.formats.runner import open_runner
from edgekit.routes import find_route

RNG = np.random.default_rng(0)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(), nn.Conv2d(16, 32, 1))
        self.head = nn.Linear(32, 10)

    def forward(self, image):
        return self.head(torch.relu(self.block(self.stem(image))).mean((2, 3)))


class LSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 24, batch_first=True)
        self.head = nn.Linear(24, 5)

    def forward(self, rows):
        out, _ = self.lstm(rows)
        return self.head(out[:, -1])


class Transformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.encoder = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True, dropout=0.0)
        self.head = nn.Linear(32, 5)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(1))


MODELS = {"cnn": (CNN, (1, 3, 16, 16), "image"), "lstm": (LSTM, (1, 6, 8), "rows"),
          "transformer": (Transformer, (1, 6, 8), "tokens")}
# int8, measured here (16 calibration = validation samples): the CNN passes with its weights in int8; the
# XNNPACK quantizer leaves nn.LSTM's weights in float (only the head's 120 are int8: 0.8%), which the int8
# gate always fails as "not really quantized"; the transformer block is 98.5% int8 with cosine 0.9998, and
# its 5 near-equal logits (untrained) may flip top-1 on a few of 16 samples (seen: 0.875 < 0.95, failed).
# Recheck floors: the worst cosines measured on fresh inputs (CNN > 0.999, LSTM 0.9984, transformer
# 0.9993) less margin.
INT8 = {"cnn": (("passed",), None, 0.99), "lstm": (("failed",), "not really quantized", 0.995),
        "transformer": (("inconclusive",), "top1_agreement", 0.995)}  # 200 samples: top-1 0.96 [0.93, 0.99] vs 0.95


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module", params=sorted(MODELS))
def build(request, tmp_path_factory):
    torch.manual_seed(0)
    cls, shape, name = MODELS[request.param]
    model = cls().eval()
    calibration = [{name: RNG.standard_normal(shape).astype(np.float32)} for _ in range(16)]
    example = torch.from_numpy(calibration[0][name])
    result = edgekit.convert(model, example_inputs=(example,), formats=["executorch"], precision=["fp32", "int8"],
                             calibration_data=calibration, validation_data=[{name: RNG.standard_normal(shape).astype(np.float32)}
                                                                            for _ in range(200)],
                             output_dir=tmp_path_factory.mktemp(request.param))
    return request.param, model, shape, result


def _recheck(model: nn.Module, path: str, shape: tuple[int, ...]) -> float:
    """The worst cosine over 8 fresh inputs between the torch model and the .pte run in ExecuTorch."""
    runner = open_runner(path)
    name = runner.inputs[0].name
    worst = 1.0
    for _ in range(8):
        x = RNG.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        worst = min(worst, _cosine(next(iter(runner.run({name: x}).values())), expected))
    return worst


@pytest.mark.slow
def test_fp32_and_int8_round_trip_parity(build):
    name, model, shape, result = build
    assert not result.failures, result.failures
    by_precision = {a.precision: a for a in result.artifacts}
    fp32, int8 = by_precision["fp32"], by_precision["int8"]
    assert fp32.validation.status == "passed" and fp32.validation.cosine >= 0.9999
    assert _recheck(model, fp32.path, shape) >= 0.9999
    status, problem, floor = INT8[name]
    assert int8.validation.status in status
    if int8.validation.status != "passed":
        assert problem in int8.validation.message, int8.validation.message
    assert _recheck(model, int8.path, shape) >= floor
    counts = get_format("executorch").member("weight_counts")(int8.path)
    weights = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    if name == "lstm":
        assert counts["int8"] == 24 * 5 and int8.validation.int8_weight_fraction < 0.05  # the head only (0.0355): the LSTM stays float
    else:  # the matrices really are stored as int8
        assert counts["int8"] >= 0.9 * weights and int8.validation.int8_weight_fraction >= 0.98, (counts, weights)
        assert int8.validation.cosine >= 0.99
    assert get_format("executorch").member("stored_precision")(fp32.path) == "fp32"
    assert any(note.startswith("partition: ") and "XNNPACK" in note for note in fp32.notes)


@pytest.mark.slow
@pytest.mark.parametrize("build", ["cnn"], indirect=True)
def test_profile_of_a_pte_gives_latency_stats(build):
    _, _, _, result = build
    report = edgekit.profile(result.artifacts[0].path, runs=20, min_seconds=0.05, warmup=2, op_profile_runs=0)
    stats = report.results[0]
    assert (stats.status, stats.format, stats.runtime, stats.accelerator) == ("complete", "executorch", "executorch",
                                                                              "XnnpackBackend")
    assert stats.runs >= 20 and 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms < 1000
    assert stats.peak_rss_bytes and stats.peak_rss_bytes > 0 and stats.load_ms is not None


@pytest.mark.slow
@pytest.mark.parametrize("build", ["cnn"], indirect=True)
def test_check_reports_the_portable_kernels_as_fallbacks(build):
    _, _, _, result = build
    report = edgekit.check(result.artifacts[0].path, target="android-arm64-executorch")
    fallbacks = [f for f in report.findings if f.severity == "fallback"]
    assert [f.op for f in fallbacks] == ["aten::mean.out"]  # XNNPACK takes the convs and the linear, not mean
    assert report.stats["executorch"].ops_fallback == 1


@pytest.mark.slow
def test_a_pte_that_does_not_load_is_a_failed_route(monkeypatch, tmp_path):
    import edgekit.converters.torch_executorch as route

    real = route._write
    monkeypatch.setattr(route, "_write", lambda path, buffer: real(path, buffer[: len(buffer) // 2]))
    result = edgekit.convert(LSTM().eval(), example_inputs=(torch.zeros(1, 6, 8),), formats=["executorch"],
                             precision=["fp32"], output_dir=tmp_path / "out")
    assert not result.artifacts and len(result.failures) == 1
    error = result.failures[0].error
    assert error.startswith("the ExecuTorch runtime cannot load model_fp32.pte: "), error


@pytest.mark.slow
def test_float_layers_are_refused_with_the_reason(tmp_path):
    from edgekit.errors import ConversionError
    from edgekit.options import QuantScheme
    from edgekit.routes import RouteRequest
    from edgekit.sources import load_source

    source = load_source(CNN().eval(), example_inputs=(torch.zeros(1, 3, 16, 16),))
    request = RouteRequest(source=source, precision="int8", scheme=QuantScheme(),
                           calibration=[{"image": np.zeros((1, 3, 16, 16), np.float32)}], out_dir=tmp_path, stem="m",
                           float_layers=("head",))
    with pytest.raises(ConversionError, match=r"XNNPACK quantizer cannot keep layers in float \(head\)") as caught:
        find_route("torch", "executorch", "int8").load()(request)
    assert "set_module_name(name, None)" in caught.value.hint


def test_fp16_is_refused_up_front():
    with pytest.raises(UnsupportedRouteError, match="torch->executorch route does not support precision fp16"):
        find_route("torch", "executorch", "fp16")


def test_debug_says_it_is_not_available_for_executorch():
    fmt = get_format("executorch")
    with pytest.raises(edgekit.errors.EdgekitError, match="not available for executorch") as caught:
        fmt.member("trace")
    assert "no intermediate tensors" in caught.value.hint


def test_the_sniffer_accepts_pte_and_rejects_the_others(tmp_path):
    from formats import models

    from edgekit.formats.sniff import read_head

    onnx = models.onnx_model(tmp_path / "m.onnx")
    others = [models.tflite_model(tmp_path / "m.tflite"), onnx, models.openvino_ir(onnx, tmp_path / "m.xml")]
    pte = get_format("executorch")
    assert pte.sniff(b"\x1c\x00\x00\x00ET12eh00" + bytes(20), tmp_path / "a.bin")  # the bytes a .pte starts with
    assert not any(pte.sniff(read_head(p), p) for p in others)
    for name in ("tflite", "onnx", "openvino"):
        assert not get_format(name).sniff(b"\x1c\x00\x00\x00ET12eh00" + bytes(60), tmp_path / "m.pte")


BLOCKED = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "executorch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
from edgekit.errors import EdgekitError
from edgekit.formats.runner import open_runner
from edgekit.routes import find_route
for call in (lambda: find_route("torch", "executorch", "fp32"), lambda: open_runner(sys.argv[1])):
    try:
        call()
    except EdgekitError as exc:
        print(exc.message, "|", exc.hint)
"""


def test_without_executorch_the_route_and_the_runner_name_the_extra(tmp_path):
    pte = tmp_path / "m.pte"
    pte.write_bytes(b"\x1c\x00\x00\x00ET12" + bytes(100))
    done = subprocess.run([sys.executable, "-c", BLOCKED, str(pte)], capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert lines == [
        "converting torch to executorch needs the Python module 'executorch', which is not installed"
        " | pip install 'edgekit[executorch]'",
        "running executorch artifacts with executorch needs the Python module 'executorch' (package executorch),"
        " which is not installed | pip install 'edgekit[executorch]'",
    ], done.stderr


class PReLUNet(nn.Module):
    """P-Net's pattern: convolutions, each followed by a PReLU with one slope per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 10, 3), nn.PReLU(10), nn.MaxPool2d(2, 2, ceil_mode=True),
                                  nn.Conv2d(10, 16, 3), nn.PReLU(16))
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.slow
def test_an_example_sliced_from_a_numpy_batch_lowers(tmp_path):
    """``batch[0][None]`` has stride 0 on its batch axis: ExecuTorch's own flow refuses the program captured
    from it ("0 in strides"), the route captures it again from a dense copy and the .pte matches the model."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)
    model = PReLUNet().eval()
    with torch.no_grad():
        for module in model.body:
            if isinstance(module, nn.PReLU):
                module.weight.uniform_(0.05, 0.5)  # distinct slopes per channel
    batch = RNG.standard_normal((48, 3, 24, 24)).astype(np.float32)
    example = torch.from_numpy(batch[0][None])
    assert example.stride()[0] == 0
    with pytest.raises(RuntimeError, match="0 in strides is not supported for ExecuTorch"):
        to_edge_transform_and_lower(torch.export.export(model, (example,)),
                                    partitioner=[XnnpackPartitioner()]).to_executorch()
    fp32, int8 = _fp32_and_int8(model, example, batch, tmp_path)
    assert int8.validation.cosine >= 0.99 and int8.validation.int8_weight_fraction >= 0.9
    assert _recheck(model, int8.path, (1, 3, 24, 24)) >= 0.99


def _fp32_and_int8(model, example, batch, tmp_path):
    """fp32 and int8 .pte of ``model`` (calibrated on 16 samples, validated on the rest); fp32 checked to match."""
    result = edgekit.convert(model, example_inputs=(example,), formats=["executorch"], precision=["fp32", "int8"],
                             calibration_data=batch[:16], validation_data=batch[16:], output_dir=tmp_path / "out")
    assert not result.failures, result.failures
    by_precision = {a.precision: a for a in result.artifacts}
    fp32, int8 = by_precision["fp32"], by_precision["int8"]
    assert fp32.validation.status == "passed" and fp32.validation.cosine >= 0.9999
    assert _recheck(model, fp32.path, tuple(example.shape)) >= 0.9999
    return fp32, int8


class DensePReLU(nn.Module):
    """MTCNN O-Net's tail: a PReLU after a Linear layer (2-D input) beside PReLUs after convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.prelu_conv = nn.Conv2d(3, 8, 3), nn.PReLU(8)
        self.dense, self.prelu_dense = nn.Linear(8 * 6 * 6, 16), nn.PReLU(16)
        self.head = nn.Linear(16, 4)

    def forward(self, image):
        return self.head(self.prelu_dense(self.dense(self.prelu_conv(self.conv(image)).flatten(1))))


@pytest.mark.slow
def test_a_prelu_after_a_linear_layer_lowers(tmp_path):
    """ExecuTorch's own flow fails the whole lowering on a 2-D PReLU ("non-NHWC compatible node"); edgekit
    leaves that PReLU out of the XNNPACK partition (decomposed, its select runs in the portable kernels),
    delegates the rest, and the .pte matches the model."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)
    model = DensePReLU().eval()
    with torch.no_grad():
        model.prelu_dense.weight.uniform_(0.05, 0.5)
    example = torch.from_numpy(RNG.standard_normal((1, 3, 8, 8)).astype(np.float32))
    with pytest.raises(Exception, match="ChannelsLastTaggedReshapePass"):
        to_edge_transform_and_lower(torch.export.export(model, (example,)),
                                    partitioner=[XnnpackPartitioner()]).to_executorch()
    batch = RNG.standard_normal((48, 3, 8, 8)).astype(np.float32)
    fp32, int8 = _fp32_and_int8(model, example, batch, tmp_path)
    delegated, portable = " ".join(fp32.notes).split("running ")[1].split("; portable kernels (not delegated): ")
    assert "Conv2d x1" in delegated and "PReLU x1" in delegated, delegated  # the conv's PReLU stays in XNNPACK
    assert "aten::where.self_out x1" in portable, portable  # the 2-D PReLU, decomposed, runs in the portable kernels
    assert int8.validation.cosine >= 0.99 and _recheck(model, int8.path, (1, 3, 8, 8)) >= 0.99
