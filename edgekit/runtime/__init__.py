"""Runners: load an artifact in its real runtime and run it on named inputs.

One module per runtime; ``RUNNERS`` maps an artifact format to the module that runs it.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from edgekit.runtime.base import Runner

RUNNERS: dict[str, str] = {
    "tflite": "edgekit.runtime.litert",
    "onnx": "edgekit.runtime.onnxruntime",
    "openvino": "edgekit.runtime.openvino",
}


def open_runner(
    path: Path, fmt: str, *, device: str | None = None, threads: int | None = None, profile_ops: bool = False
) -> Runner:
    """Load the artifact at ``path`` (a ``fmt`` file) in its runtime, ready to ``run``.

    ``profile_ops`` turns on the runtime's per-operation profiler (slower runs: not for timing).
    """
    module = importlib.import_module(RUNNERS[fmt])
    if profile_ops:
        return module.load(Path(path), device=device, threads=threads, profile_ops=True)
    return module.load(Path(path), device=device, threads=threads)


__all__ = ["RUNNERS", "Runner", "open_runner"]
