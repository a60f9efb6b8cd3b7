"""MTCNN O-Net (facenet-pytorch's trained weights) as an ordinary torch.export ``.pt2``: edgekit's default safe
loader reads it, and the ONNX and ExecuTorch artifacts match the eager module on 48x48 face-sized crops."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from zoo_models import MODELS, Source, fetch

pytestmark = [pytest.mark.slow, pytest.mark.zoo]


def test_onet_pt2_loads_safely_and_converts_to_onnx_and_executorch(tmp_path: Path) -> None:
    import edgekit

    model = MODELS["mtcnn-onet-pt2"]
    path = fetch(model)
    assert path.suffix == ".pt2" and path.read_bytes()[:2] == b"PK"
    source = Source(model, path)
    validation = np.concatenate([f["x"] for f in model.make_data(source, 16, "evaluation")])
    probabilities = np.concatenate([source.predict({"x": v[None]})[2] for v in validation])
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
    faces = probabilities[:, 1]  # flower crops, no faces: mostly low, not constant (0.00001 to 0.19 measured)
    assert faces.min() < 0.01 and faces.max() > 0.1 and np.median(faces) < 0.05
    build = edgekit.convert(str(path), formats=["onnx", "executorch"], precision="fp32", validation_data=validation,
                            output_dir=tmp_path / "out")  # no allow_unsafe: the safe .pt2 reader
    assert not build.failures, build.failures
    assert build.source.kind == "pt2" and [o.shape for o in build.source.outputs] == [(1, 4), (1, 10), (1, 2)]
    for artifact in build.artifacts:
        assert artifact.passed and artifact.validation.samples == 16, (artifact.format, artifact.validation)
        assert artifact.validation.cosine > 0.99999 and artifact.validation.max_abs_error < 1e-4, artifact.validation
