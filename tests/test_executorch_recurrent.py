"""PyTorch -> ExecuTorch of unrolled recurrent layers: the split/squeeze ops of an ``nn.LSTM``'s steps are
lowered as XNNPACK slice/view ops (and only those of recurrent layers), so a GE2E-style encoder (stacked
LSTM, Linear, ReLU, L2 norm) lowers to a few XNNPACK delegates whatever its sequence length; fp32 matches
the model, int8 fails the "not really quantized" gate (the pt2e XNNPACK quantizer leaves the LSTM float)."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")
nn = torch.nn

import edgekit  # noqa: E402
from edgekit.formats.runner import open_runner  # noqa: E402

pytestmark = pytest.mark.slow
LAYERS, STEPS, FEATURES, HIDDEN = 2, 12, 12, 32


class Encoder(nn.Module):
    """resemblyzer's VoiceEncoder in small: the last layer's final hidden state, Linear, ReLU, L2 norm."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, 16)

    def forward(self, mels):
        _, (hidden, _) = self.lstm(mels)
        embeds = torch.relu(self.linear(hidden[-1]))
        return embeds / torch.norm(embeds, dim=1, keepdim=True)


class SplitThenLSTM(nn.Module):
    """A split outside the recurrent layer (left alone) feeding a 2-step LSTM."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)

    def forward(self, x):
        left, right = torch.split(x, [2, 2], dim=-1)
        out, _ = self.lstm(torch.cat([right, left], dim=-1))
        return out


def _edge_ops(graph_module) -> Counter:
    return Counter(str(n.target).split(">")[0].split(": ")[-1] for n in graph_module.graph.nodes if n.op == "call_function")


def test_the_pass_rewrites_only_the_recurrent_layers_ops():
    from edgekit.converters._executorch_recurrent import RecurrentSliceViewPass
    from executorch.exir import to_edge

    program = to_edge(torch.export.export(SplitThenLSTM().eval(), (torch.zeros(1, 2, 4),), strict=False))
    module = program.exported_program().graph_module
    before = _edge_ops(module)
    rewrite = RecurrentSliceViewPass()
    assert rewrite(module).modified
    after = _edge_ops(module)
    split, squeeze = "aten.split_with_sizes_copy.default", "aten.squeeze_copy.dims"
    # 2 steps: each step's gates split in four (2 splits) and 4 squeezes (the steps' inputs, the initial states)
    assert (before[split], before[squeeze]) == (3, 4), before
    assert (after[split], after[squeeze]) == (1, 0), after  # the model's own split stays a split
    assert rewrite.rewritten == 6
    assert after["aten.slice_copy.Tensor"] - before["aten.slice_copy.Tensor"] == 2 * 4
    assert after["aten.view_copy.default"] - before["aten.view_copy.default"] == 4


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Encoder().eval()
    batch = rng.standard_normal((80, 1, STEPS, FEATURES)).astype(np.float32)
    calibration = [{"mels": x} for x in batch[:16]]
    result = edgekit.convert(model, example_inputs=(torch.from_numpy(batch[0]),), formats=["executorch"],
                             precision=["fp32", "int8"], calibration_data=calibration,
                             validation_data=[{"mels": x} for x in batch[16:]], output_dir=tmp_path_factory.mktemp("ge2e"))
    assert not result.failures, result.failures
    return model, {a.precision: a for a in result.artifacts}


def _recheck(model: nn.Module, path: str) -> float:
    """The worst cosine over 8 fresh inputs between the model and the .pte run in the ExecuTorch runtime."""
    runner = open_runner(path)
    rng = np.random.default_rng(1)
    worst = 1.0
    for _ in range(8):
        x = rng.standard_normal((1, STEPS, FEATURES)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        worst = min(worst, _cosine(next(iter(runner.run({runner.inputs[0].name: x}).values())), expected))
    return worst


def _partition(notes: list[str]) -> tuple[int, dict[str, int], dict[str, int]]:
    """(delegates, delegated XNNPACK node counts, portable kernel counts) from the partition note."""
    note = next(n for n in notes if n.startswith("partition: "))
    delegates = int(re.match(r"partition: (\d+) XNNPACK", note).group(1))
    delegated, portable = note.split("running ")[1].split("; portable kernels (not delegated): ")
    counts = [dict((op, int(n)) for op, n in re.findall(r"([\w:.]+) x(\d+)", part)) for part in (delegated, portable)]
    return delegates, counts[0], counts[1]


def test_fp32_lstm_lowers_to_a_few_delegates_and_matches(build):
    model, artifacts = build
    fp32 = artifacts["fp32"]
    assert fp32.validation.status == "passed" and fp32.validation.samples == 64 and fp32.validation.cosine >= 0.9999
    assert _recheck(model, fp32.path) >= 0.9999
    cells = LAYERS * STEPS
    # a gate split and a squeeze per cell, 3 more per layer (measured: 2 layers x 3 steps 18, x 5 steps 26;
    # resemblyzer's 3 x 160: 969)
    assert f"recurrent layers: {2 * cells + 3 * LAYERS} split/squeeze ops" in " ".join(fp32.notes), fp32.notes
    delegates, delegated, portable = _partition(fp32.notes)
    assert delegates <= 4  # unrolled steps used to cut it into one delegate per step and layer (37 at 3 x 10)
    # every step's gates run in XNNPACK: 3 sigmoids, 2 tanh, 1 recurrent matmul per cell (+ input projections, head)
    assert (delegated["Sigmoid"], delegated["Tanh"]) == (3 * cells, 2 * cells), delegated
    assert delegated["FullyConnected"] == cells + LAYERS + 1, delegated
    assert not {"aten::split_with_sizes_copy.out", "aten::squeeze_copy.dims_out"} & set(portable), portable
    assert sum(portable.values()) <= 10, portable  # h0/c0, the last layer's select, the norm's pow and sum
    report = edgekit.check(fp32.path, target="android-arm64-executorch")
    fallbacks = Counter(f.op for f in report.findings if f.severity == "fallback")
    assert fallbacks == Counter(portable), (fallbacks, portable)


def test_int8_lstm_fails_as_not_really_quantized(build):
    model, artifacts = build
    int8 = artifacts["int8"]
    assert int8.validation.status == "failed" and not int8.passed
    assert "not really quantized" in int8.validation.message, int8.validation.message
    weights = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    assert int8.validation.int8_weight_fraction == pytest.approx(32 * 16 / weights, abs=0.01)  # the head only
    assert int8.validation.cosine >= 0.999 and _recheck(model, int8.path) >= 0.995  # 0.99996 and 0.9989 measured
    assert _partition(int8.notes)[0] <= 4
