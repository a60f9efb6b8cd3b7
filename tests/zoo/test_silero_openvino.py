"""silero-vad (the real model from its wheel) to OpenVINO int8 with its sample rate fixed: it passes validation.

NNCF int8 used to give cosine 0.13 on its outputs: the STFT magnitude (``sqrt(re**2 + im**2)``) was quantized
in int8 and NNCF's int8 LSTM broke the carried state. Both stay float by default now, and the notes say so.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from zoo_models import build_silero

pytestmark = [pytest.mark.slow, pytest.mark.zoo]


def test_silero_vad_openvino_int8_passes_with_its_recurrent_layer_and_magnitude_in_float(tmp_path: Path) -> None:
    build = build_silero(tmp_path / "out", "openvino", 64, rescue=False)
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    validation = artifact.validation
    print(validation.cosine, validation.int8_weight_fraction, artifact.notes)
    assert artifact.passed and validation.status == "passed" and validation.samples == 64
    assert validation.cosine >= 0.99  # 0.9939 measured (0.13 before)
    assert 0.5 < validation.int8_weight_fraction < 0.65  # 0.57: the LSTM's weights stay float
    notes = " ".join(artifact.notes)
    assert "squared values" in notes and "/model/stft/Sqrt" in notes
    assert "recurrent layers with a carried state input" in notes and "LSTMSequence" in notes
