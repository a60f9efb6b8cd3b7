"""resemblyzer's trained GE2E speaker encoder (3-layer LSTM, checkpoint from its wheel) through edgekit at fp32."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from zoo_models import MODELS, Source, fetch

pytestmark = [pytest.mark.slow, pytest.mark.zoo]


def test_ge2e_encoder_fp32_onnx_and_openvino_match_the_checkpoint(tmp_path: Path) -> None:
    import torch

    import edgekit

    model = MODELS["resemblyzer-ge2e"]
    source = Source(model, fetch(model))
    validation = np.concatenate([f["x"] for f in model.make_data(source, 16, "evaluation")])
    embeddings = [source.predict({"x": v[None]})[0][0] for v in validation]
    assert all(abs(np.linalg.norm(e) - 1) < 1e-5 for e in embeddings)  # the model's own L2 norm
    assert np.mean([embeddings[0] @ e for e in embeddings[1:]]) < 0.9  # different clips, different speakers' embeddings
    build = edgekit.convert(source.framework_model, example_inputs=(torch.from_numpy(validation[:1]),),
                            formats=["onnx", "openvino"], precision="fp32", validation_data=validation,
                            output_dir=tmp_path / "out")
    assert not build.failures, build.failures
    for artifact in build.artifacts:
        assert artifact.passed and artifact.validation.samples == 16, (artifact.format, artifact.validation)
        assert artifact.validation.cosine > 0.99999 and artifact.validation.max_abs_error < 1e-4, artifact.validation
