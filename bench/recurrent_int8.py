"""int8 calibration strategies for a 3-layer LSTM encoder (PyTorch) on this machine.

The model: resemblyzer's trained GE2E speaker encoder (``nn.LSTM(40, 256, num_layers=3)`` over 160 mel frames,
1.36 M LSTM weights, from its wheel through ``bench/zoo_models.py``); calibration and validation on mel frames
of synthetic audio (disjoint seeds). ``--synthetic`` uses a seeded ``nn.LSTM(80, 256, 3)`` over 100 frames.

Each configuration (format, NNCF bias correction, calibration samples) is one ``edgekit.convert`` in its own
process, killed after ``--bound`` seconds (a configuration that does not finish is recorded as such). For each:
wall time of the int8 route (its first to its last progress event), the per-sample progress events and the
first time estimate, the verdict with its cosine, the fraction of weights stored as int8, and the build's
message (an "int8" artifact with its weights left in float says which ops hold them).

    .venv/bin/python bench/recurrent_int8.py [--configs openvino:fast:16,onnx::64] [--validation 32] [--bound 600]

Writes bench/results/recurrent_int8.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
FRAMES, FEATURES, HIDDEN, LAYERS = 100, 80, 256, 3
#: format:bias correction (OpenVINO only; "" elsewhere):calibration samples
CONFIGS = "openvino:fast:16,openvino:fast:64,openvino:full:64,onnx::64,tflite::64"


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


def _model(synthetic: bool, calibration: int, validation: int):
    """(model, its description, calibration array, validation array)."""
    if synthetic:
        name = f"nn.LSTM({FEATURES}, {HIDDEN}, num_layers={LAYERS}) over {FRAMES} frames + Linear({HIDDEN}, 32)"
        return encoder(), name, sequences(calibration, 1)[:, 0], sequences(validation, 2)[:, 0]
    sys.path.insert(0, str(Path(__file__).parent))
    from zoo_models import MODELS, Source, fetch

    zoo = MODELS["resemblyzer-ge2e"]
    source = Source(zoo, fetch(zoo))
    calibration_data = np.concatenate([f["x"] for f in zoo.make_data(source, calibration, "calibration")])
    validation_data = np.concatenate([f["x"] for f in zoo.make_data(source, validation, "evaluation")])
    return source.framework_model, f"{zoo.name} ({zoo.package}): {zoo.covers}", calibration_data, validation_data


def run_one(config: str, synthetic: bool, validation: int) -> dict:
    """One configuration's int8 build, measured."""
    import torch

    import edgekit

    fmt, bias, count = config.split(":")
    model, name, calibration, validation_data = _model(synthetic, int(count), validation)
    quantization = {"bias_correction": bias} if bias else None
    events: list[tuple[float, str, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        build = edgekit.convert(
            model, example_inputs=(torch.from_numpy(calibration[:1]),), formats=[fmt], precision="int8",
            output_dir=out, calibration_data=calibration, validation_data=validation_data, rescue=False,
            calibration_samples=int(count), quantization=quantization,
            progress=lambda e: _event(events, time.perf_counter() - started, e.stage, e.message),
        )
        rows = [_row(a, events) for a in build.artifacts]
        rows += [{"format": f.format, "precision": f.precision, "status": "error", "message": f.error,
                  **_timing(f"convert:{f.format}/{f.precision}", events)} for f in build.failures]
    return {"config": config, "model": name, "lstm_weights": sum(p.numel() for p in model.lstm.parameters()),
            "bias_correction": bias or None, "calibration_samples": int(count), "validation_samples": validation,
            "build_seconds": round(time.perf_counter() - started, 1), "artifacts": rows}


def _event(events: list[tuple[float, str, str]], seconds: float, stage: str, message: str) -> None:
    """Keep a progress event, and show it on stderr (the parent reads it when the run overruns its bound)."""
    events.append((seconds, stage, message))
    print(json.dumps([round(seconds, 1), stage, message]), file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=CONFIGS, help="format:bias correction:calibration samples, comma-separated")
    parser.add_argument("--synthetic", action="store_true", help="a seeded LSTM instead of the trained encoder")
    parser.add_argument("--validation", type=int, default=32)
    parser.add_argument("--bound", type=float, default=600, help="seconds one configuration may take")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.synthetic, args.validation)))
        return
    started, runs = time.perf_counter(), []
    RESULTS.mkdir(exist_ok=True)
    for config in args.configs.split(","):
        runs.append(_child(config, args))
        print(json.dumps(runs[-1]), flush=True)
        result = {  # written after every configuration: an interrupted run keeps what it measured
            "machine": f"{os.cpu_count()} CPUs", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "bound_seconds": args.bound, "validation_samples": args.validation,
            "total_seconds": round(time.perf_counter() - started, 1), "runs": runs,
        }
        (RESULTS / "recurrent_int8.json").write_text(json.dumps(result, indent=2) + "\n")


def _child(config: str, args: argparse.Namespace) -> dict:
    """Run one configuration in its own process, bounded by ``args.bound`` seconds."""
    command = [sys.executable, __file__, "--one", config, "--validation", str(args.validation)]
    command += ["--synthetic"] if args.synthetic else []
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.bound, check=False)
    except subprocess.TimeoutExpired as timeout:
        return {"config": config, "status": "did not finish", "build_seconds": round(time.perf_counter() - started, 1),
                "last_events": _events(timeout.stderr)[-3:]}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"config": config, "status": "crashed", "returncode": done.returncode, "stderr": done.stderr[-800:]}
    return json.loads(lines[-1])


def _events(stderr: str | bytes | None) -> list[list]:
    """The progress events a child printed, as [seconds, stage, message]."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr or ""
    return [json.loads(line) for line in text.splitlines() if line.startswith("[")]


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
