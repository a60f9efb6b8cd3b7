"""Real edgekit work as Ray tasks: a build, a measurement, both reporting where they ran.

Files never travel between nodes: a build returns its artifact's bytes, a measurement writes them into its own
folder first. The nodes import this module (the tests put ``tests/`` on their PYTHONPATH).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _where() -> dict:
    import ray

    return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


def build_onnx(model: bytes, validation: np.ndarray, name: str = "digits") -> dict:
    """``edgekit.convert`` of a .keras model given as bytes to ONNX fp32; the artifact's bytes and its parity."""
    import edgekit

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="edgekit-ray-build-") as folder:
        source = Path(folder) / f"{name}.keras"
        source.write_bytes(model)
        build = edgekit.convert(source, formats=["onnx"], precision="fp32", validation_data=validation,
                                output_dir=Path(folder) / "out")
        artifact = build.artifact("onnx", "fp32")
        data = Path(artifact.path).read_bytes()
    return {**_where(), "artifact": data, "cosine": artifact.validation.cosine, "verdict": build.verdict,
            "samples": artifact.validation.samples, "started": started, "ended": time.time()}


def measure(artifact: bytes, *, runs: int = 20, min_seconds: float = 0.5, started_flag: str | None = None) -> dict:
    """``edgekit.profile`` of an ONNX artifact given as bytes on this node's CPU; ``started_flag`` is touched first."""
    import edgekit

    if started_flag:
        Path(started_flag).touch()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="edgekit-ray-measure-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(artifact)
        report = edgekit.profile(path, runs=runs, min_seconds=min_seconds, warmup=3, op_profile_runs=0)
    result = report.results[0]
    return {**_where(), "status": result.status, "runs": result.runs, "median_ms": result.median_ms,
            "started": started, "ended": time.time()}


def measure_together(artifact: bytes, barrier: str, index: int, parties: int, wait_s: float = 120.0) -> dict:
    """``measure`` once ``parties`` tasks have all started (files in ``barrier``): proof they ran at the same time."""
    folder = Path(barrier)
    (folder / f"started-{index}").touch()
    deadline = time.monotonic() + wait_s
    while len(list(folder.glob("started-*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(folder.glob('started-*')))} of {parties} tasks started within {wait_s} s")
        time.sleep(0.05)
    return measure(artifact, runs=10, min_seconds=0.2)
