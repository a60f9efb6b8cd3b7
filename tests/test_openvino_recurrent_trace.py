"""PyTorch -> OpenVINO of a module with recurrent layers: converted from the traced module, the LSTMs stay whole.

``openvino.convert_model`` on the ``torch.export`` program gets ``nn.LSTM`` decomposed into one cell per time
step (a 3-layer LSTM over 160 frames: 11 078 ops, and NNCF's int8 setup ran past 10 minutes on them).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(12, 32, num_layers=3, batch_first=True)
        self.head = torch.nn.Linear(32, 8)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y[:, -1])


@pytest.mark.slow  # an OpenVINO conversion and validation: about 15 s
def test_a_three_layer_lstm_converts_to_three_lstm_sequences_and_passes(tmp_path: Path) -> None:
    import openvino

    import edgekit

    torch.manual_seed(0)
    model = Encoder().eval()
    data = np.cumsum(np.random.default_rng(0).normal(0, 0.3, (24, 40, 12)), axis=1).astype(np.float32)
    build = edgekit.convert(model, example_inputs=(torch.from_numpy(data[:1]),), formats=["openvino"], precision="fp32",
                            validation_data=data, output_dir=tmp_path / "out")
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert artifact.passed and artifact.validation.cosine > 0.99999, artifact.validation
    assert artifact.notes[0].startswith("openvino.convert_model on the traced module"), artifact.notes
    ops = Counter(op.get_type_name() for op in openvino.Core().read_model(artifact.path).get_ops())
    assert ops["LSTMSequence"] == 3 and sum(ops.values()) < 100, ops  # unrolled: 40 steps x 3 layers of cells


class AttentionThenLstm(torch.nn.Module):
    """nn.MultiheadAttention reads tensor values as Python values while traced (TracerWarning)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(12, 2, batch_first=True)
        self.lstm = torch.nn.LSTM(12, 16, batch_first=True)

    def forward(self, x):
        attended, _ = self.attention(x, x, x, need_weights=False)
        y, _ = self.lstm(attended)
        return y[:, -1]


@pytest.mark.slow  # an OpenVINO conversion and validation: about 15 s
def test_a_module_whose_trace_is_not_general_converts_from_the_torch_export_program(tmp_path: Path) -> None:
    import edgekit

    torch.manual_seed(0)
    data = np.random.default_rng(1).normal(size=(16, 6, 12)).astype(np.float32)
    build = edgekit.convert(AttentionThenLstm().eval(), example_inputs=(torch.from_numpy(data[:1]),), formats=["openvino"],
                            precision="fp32", validation_data=data, output_dir=tmp_path / "out")
    (artifact,) = build.artifacts
    assert artifact.passed, artifact.validation
    assert artifact.notes[0] == "openvino.convert_model on the torch.export program", artifact.notes
