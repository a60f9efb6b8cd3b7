"""The imported GraphModules pass torch.export strict and non-strict, and keep parity with ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest

import group_models
from onnx_graphs import run_ort


@pytest.mark.parametrize("make", [group_models.vision, group_models.sequence], ids=["vision", "sequence"])
@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
def test_group_model_exports(make, strict: bool) -> None:
    import torch

    from edgekit.sources.onnx_import import import_onnx

    model, feed = make()
    imported = import_onnx(model)
    args = tuple(torch.from_numpy(v) for v in feed.values())
    program = torch.export.export(imported.module, args, strict=strict)
    placeholders = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    assert len(placeholders) == len(feed)  # every shape-like value folded: only the real inputs remain
    with torch.no_grad():
        actual = program.module()(*args)
    for a, e in zip(actual, run_ort(model, feed)):
        assert a.shape == e.shape
        assert float(np.abs(a.numpy() - e).max()) < 1e-4


def test_weights_become_named_parameters() -> None:
    from edgekit.sources.onnx_import import import_onnx

    model, _ = group_models.vision()
    module = import_onnx(model).module
    names = {name for name, _ in module.named_parameters()}
    assert {"w1", "b1", "fw", "fb", "wt"} <= names
