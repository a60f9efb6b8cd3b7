"""silero-vad (the real model from its wheel) rescued in ONNX Runtime: the search finds the one elementwise op whose
int8 rounding breaks the STFT magnitude, without taking the convolutions out of int8.

Plain int8 gives cosine 0.62. Keeping the whole elementwise group in float gives 0.9997, but it also leaves the
STFT and encoder convolutions float (39% of the compute in int8, under the 80% floor), so the group is refused and
bisected: ``/model/stft/Add`` alone meets the target with the int8 share of plain int8. The LSTM stays float in
every ONNX Runtime int8 build (its static quantizer has none), and the record says so.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from zoo_models import build_silero

pytestmark = [pytest.mark.slow, pytest.mark.zoo]


def test_silero_vad_onnx_rescue_bisects_the_elementwise_group_and_keeps_the_int8_share(tmp_path: Path) -> None:
    from edgekit.manifest import read_manifest

    build = build_silero(tmp_path / "out", "onnx", 32, accuracy_target={"cosine": 0.99})
    record = read_manifest(tmp_path / "out")["config"]["run"]["rescue"]["onnx/int8"]
    (artifact,) = build.artifacts
    print(record["float_layers"], record["scheme_changes"], artifact.validation.cosine, record["int8_compute_share"])
    assert record["curve"][0]["cosine"] < 0.7  # plain int8: 0.62
    assert record["met"] and artifact.passed and artifact.validation.cosine >= 0.99  # 0.9993
    assert record["float_layers"] == ["/model/stft/Add"]
    assert record["int8_compute_share"] == record["curve"][0]["int8_compute_share"] == pytest.approx(0.81, abs=0.01)
    refused = [t for t in record["tries"] if t["remedies"][0]["kind"] == "elementwise_float"]
    assert refused and refused[0]["cosine"] > 0.99 and refused[0]["int8_compute_share"] < 0.5 and not refused[0]["accepted"]
    assert any(t["remedies"][0]["detail"].startswith("1 of the ") and "layers of 'elementwise ops in float" in
               t["remedies"][0]["detail"] and t["accepted"] for t in record["tries"])
    assert any("recurrent layers (LSTM) that stay float" in note for note in record["notes"])
