"""ddddocr's CRNN text recognizer (Conv + LSTM + Gemm, the ONNX file of its wheel, dynamic width) fixed to
64x256 with input_shapes: the fp32 ONNX artifact takes that shape and matches the shipped model on text lines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from zoo_models import MODELS, Source, fetch

pytestmark = [pytest.mark.slow, pytest.mark.zoo]


def test_ddddocr_fp32_onnx_at_a_fixed_width_matches_the_shipped_model(tmp_path: Path) -> None:
    import onnxruntime as ort

    import edgekit

    model = MODELS["ddddocr"]
    path = fetch(model)
    source = Source(model, path)
    feeds = model.make_data(source, 12, "evaluation")
    assert feeds[0]["input1"].shape == (1, 1, 64, 256) and 0 <= feeds[0]["input1"].min() < feeds[0]["input1"].max() <= 1
    logits = [source.predict(f)[0] for f in feeds]
    assert logits[0].shape == (32, 1, 8210)  # one step per 8 pixels of width, 8210 classes
    assert len({tuple(lg.argmax(-1).ravel()) for lg in logits}) > 6  # different lines, different readings
    build = edgekit.convert(str(path), formats=["onnx"], precision="fp32", output_dir=tmp_path / "out",
                            validation_data=np.concatenate([f["input1"] for f in feeds]),
                            input_shapes=dict(model.input_shapes))
    assert not build.failures, build.failures
    (artifact,) = build.artifacts
    assert artifact.passed and artifact.validation.samples == 12, artifact.validation
    assert artifact.validation.cosine > 0.99999, artifact.validation
    session = ort.InferenceSession(artifact.path, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 1, 64, 256]
    out = session.run(None, {"input1": feeds[0]["input1"]})[0]
    assert np.array_equal(out.argmax(-1), logits[0].argmax(-1))
