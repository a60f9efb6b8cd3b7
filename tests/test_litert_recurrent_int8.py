"""An "int8" TFLite from litert-torch whose LSTM stays float fails as not really quantized, and says why."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow  # litert-torch conversion of a small LSTM: about 40 s
def test_lstm_int8_tflite_fails_naming_the_float_ops(tmp_path) -> None:
    import torch
    from torch import nn

    import edgekit

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 32, num_layers=2, batch_first=True)
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.head(y[:, -1])

    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(48, 10, 8)).astype(np.float32)
    build = edgekit.convert(Encoder().eval(), example_inputs=(torch.from_numpy(x[:1]),), formats=["tflite"],
                            precision="int8", calibration_data=x[:32], validation_data=x[32:], output_dir=tmp_path / "out",
                            rescue=False, isolate=False)
    (artifact,) = build.artifacts
    validation = artifact.validation
    assert validation.status == "failed" and not artifact.passed
    assert validation.int8_weight_fraction < 0.05  # 0.009: only the head's 128 weights are int8
    assert "not really quantized; float weights stay in FULLY_CONNECTED (81408 weights, 100%)" in validation.message
    assert any("recurrent ops (lstm) stay float" in note for note in artifact.notes), artifact.notes
