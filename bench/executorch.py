"""ExecuTorch fp32 vs int8 beside LiteRT and ONNX Runtime: latency and size of the same PyTorch CNN.

One model (a small 3x64x64 image CNN: conv/BN/ReLU stages, depthwise block, global mean, linear head) is
built by ``edgekit.convert`` for executorch, onnx and tflite at fp32 and int8 (32 calibration samples),
one run. For each artifact: file size, the validation cosine against the torch model, and the median
of single-sample latencies (prepared inputs, ``run_prepared``, after warm-up) in its runtime on this host.
Ratios: int8/fp32 per format (size, latency) and each format's latency / ExecuTorch's at the same precision.
Every runtime runs on one thread (``threads=1``: ONNX Runtime's intra-op threads, LiteRT's interpreter threads,
ExecuTorch's threadpool that XNNPACK runs on). Results go to bench/results/executorch.json.

    .venv/bin/python bench/executorch.py [--runs 200]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# this file is called executorch.py: its folder, first on sys.path, would shadow the executorch package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
RESULTS = Path(__file__).parent / "results" / "executorch.json"
FORMATS = ("executorch", "onnx", "tflite")


def model():
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            def stage(i, o):
                return nn.Sequential(nn.Conv2d(i, o, 3, stride=2, padding=1), nn.BatchNorm2d(o), nn.ReLU())
            self.features = nn.Sequential(stage(3, 16), stage(16, 32), stage(32, 64),
                                          nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.ReLU(), nn.Conv2d(64, 128, 1))
            self.head = nn.Linear(128, 10)

        def forward(self, image):
            return self.head(torch.relu(self.features(image)).mean((2, 3)))

    torch.manual_seed(0)
    return CNN().eval()


def latency_ms(path: str, sample: np.ndarray, runs: int) -> float:
    from edgekit.formats.runner import open_runner

    runner = open_runner(Path(path), threads=1)
    prepared = runner.prepare({runner.inputs[0].name: sample})
    for _ in range(10):
        runner.run_prepared(prepared)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run_prepared(prepared)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    import torch

    import edgekit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    rng = np.random.default_rng(0)
    calibration = [{"image": rng.standard_normal((1, 3, 64, 64)).astype(np.float32)} for _ in range(32)]
    sample = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        build = edgekit.convert(model(), example_inputs=(torch.from_numpy(sample),), formats=list(FORMATS),
                                precision=["fp32", "int8"], calibration_data=calibration, output_dir=folder)
        for failure in build.failures:
            rows.append({"format": failure.format, "precision": failure.precision, "error": failure.error})
        for artifact in build.artifacts:
            rows.append({"format": artifact.format, "precision": artifact.precision, "size_bytes": artifact.size_bytes,
                         "cosine": artifact.validation.cosine, "median_ms": round(latency_ms(artifact.path, sample, runs), 4),
                         "int8_weight_fraction": artifact.validation.int8_weight_fraction})
    by = {(r["format"], r["precision"]): r for r in rows if "median_ms" in r}
    ratios = {}
    for fmt in FORMATS:
        if (fmt, "fp32") in by and (fmt, "int8") in by:
            ratios[f"{fmt}_int8_over_fp32_latency"] = round(by[fmt, "int8"]["median_ms"] / by[fmt, "fp32"]["median_ms"], 3)
            ratios[f"{fmt}_int8_over_fp32_size"] = round(by[fmt, "int8"]["size_bytes"] / by[fmt, "fp32"]["size_bytes"], 3)
        for prec in ("fp32", "int8"):
            if fmt != "executorch" and (fmt, prec) in by and ("executorch", prec) in by:
                ratios[f"{fmt}_over_executorch_latency_{prec}"] = round(
                    by[fmt, prec]["median_ms"] / by["executorch", prec]["median_ms"], 3)
    document = {"model": "CNN 3x64x64 (3 strided conv stages, depthwise block, mean, linear)", "runs": runs, "threads": 1,
                "host": platform.processor() or platform.machine(), "results": rows, "ratios": ratios}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
