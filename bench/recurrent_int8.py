"""int8 of a 3-layer LSTM encoder (PyTorch) to OpenVINO (NNCF), ONNX (ONNX Runtime) and TFLite (litert-torch).

The model: resemblyzer's trained GE2E speaker encoder (``nn.LSTM(40, 256, num_layers=3)`` over 160 mel frames,
1.4 M LSTM weights, from its wheel through ``bench/zoo_models.py``); calibration and validation on mel frames
of synthetic audio (32 and 32, disjoint seeds). ``--synthetic`` uses a seeded ``nn.LSTM(80, 256, 3)`` over
100 frames instead. For each format: wall time of the int8 route (from its first to its last progress
event), how many per-sample progress events it gave and the first time estimate, the verdict with its cosine,
the fraction of weights stored as int8, and the build's message (an "int8" artifact with its weights left in
float says which ops hold them).

    .venv/bin/python bench/recurrent_int8.py [--calibration 64] [--validation 32] [--formats openvino,onnx,tflite]

Writes bench/results/recurrent_int8.json.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
FRAMES, FEATURES, HIDDEN, LAYERS = 100, 80, 256, 3


def encoder():
    """The 3-layer LSTM encoder with a linear head on its last frame (seeded weights)."""
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(FEATURES, HIDDEN, num_layers=LAYERS, batch_first=True)
            self.head = nn.Linear(HIDDEN, 32)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.head(y[:, -1])

    torch.manual_seed(0)
    return Encoder().eval()


def sequences(count: int, seed: int) -> np.ndarray:
    """Smooth random feature sequences (cumulative sums of noise, scaled): ``(count, 1, FRAMES, FEATURES)``."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.3, (count, 1, FRAMES, FEATURES)), axis=2)
    return (walk / np.sqrt(np.arange(1, FRAMES + 1))[None, None, :, None]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--synthetic", action="store_true", help="a seeded LSTM instead of the trained encoder")
    parser.add_argument("--validation", type=int, default=32)
    parser.add_argument("--formats", default="openvino,onnx,tflite")
    args = parser.parse_args()
    import torch

    import edgekit

    events: list[tuple[float, str, str]] = []
    if args.synthetic:
        model, name = encoder(), f"nn.LSTM({FEATURES}, {HIDDEN}, num_layers={LAYERS}) over {FRAMES} frames + Linear({HIDDEN}, 32)"
        calibration, validation = sequences(args.calibration, 1)[:, 0], sequences(args.validation, 2)[:, 0]
    else:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from zoo_models import MODELS, Source, fetch

        zoo = MODELS["resemblyzer-ge2e"]
        source = Source(zoo, fetch(zoo))
        model, name = source.framework_model, f"{zoo.name} ({zoo.package}): {zoo.covers}"
        calibration = np.concatenate([f["x"] for f in zoo.make_data(source, args.calibration, "calibration")])
        validation = np.concatenate([f["x"] for f in zoo.make_data(source, args.validation, "evaluation")])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        build = edgekit.convert(
            model, example_inputs=(torch.from_numpy(calibration[:1]),), formats=args.formats.split(","), precision="int8",
            output_dir=out, calibration_data=calibration, validation_data=validation, rescue=False,
            progress=lambda e: events.append((time.perf_counter() - started, e.stage, e.message)),
        )
        rows = [_row(a, events) for a in build.artifacts]
        rows += [{"format": f.format, "precision": f.precision, "status": "error", "message": f.error,
                  **_timing(f"convert:{f.format}/{f.precision}", events)} for f in build.failures]
    result = {
        "model": name,
        "lstm_weights": sum(p.numel() for p in model.lstm.parameters()),
        "calibration_samples": args.calibration, "validation_samples": args.validation, "machine": f"{os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "total_seconds": round(time.perf_counter() - started, 1),
        "artifacts": sorted(rows, key=lambda r: r["format"]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recurrent_int8.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _timing(stage: str, events: list[tuple[float, str, str]]) -> dict:
    """Seconds of a route's conversion, its per-sample progress events and the first time estimate."""
    mine = [(t, message) for t, s, message in events if s == stage]
    samples = [(t, message) for t, message in mine if " sample " in message]
    return {
        "convert_seconds": round(mine[-1][0] - mine[0][0], 1) if mine else None,
        "per_sample_events": len(samples),
        "first_estimate": samples[0][1] if samples else None,
        "first_estimate_after_seconds": round(samples[0][0] - mine[0][0], 1) if samples else None,
    }


def _row(artifact, events: list[tuple[float, str, str]]) -> dict:
    validation = artifact.validation
    return {
        "format": artifact.format, "precision": artifact.precision, "status": validation.status,
        "cosine": validation.cosine, "int8_weight_fraction": validation.int8_weight_fraction,
        "size_bytes": artifact.size_bytes, "message": validation.message, "notes": list(artifact.notes),
        **_timing(f"convert:{artifact.format}/{artifact.precision}", events),
    }


if __name__ == "__main__":
    main()
