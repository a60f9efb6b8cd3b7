"""The loaded form of a source model, as the converters and the validator see it."""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.specs import ModelSource


class LoadedSource(ABC):
    """A model loaded in this process, with its spec and a reference ``predict``."""

    def __init__(self, spec: ModelSource, model: Any) -> None:
        self.spec = spec
        self.model = model
        #: the model carries trained fake-quant ranges (``edgekit.qat``): int8 routes export them, no calibration
        self.fake_quantized = False

    @property
    def framework(self) -> str:
        return self.spec.framework

    @abstractmethod
    def predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the source model on one feed (input name -> array); outputs by output name."""


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of every file of a folder in sorted relative-path order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def layout_of(shape: tuple[int | None, ...], framework: str) -> str:
    """Best guess of a tensor layout from its rank and the framework's convention."""
    rank = len(shape)
    if rank == 0:
        return "scalar"
    if rank == 2:
        return "NC"
    channels_first = framework in ("torch", "onnx")
    if rank == 4:
        return "NCHW" if channels_first else "NHWC"
    if rank == 3:
        return "NCW" if channels_first else "NWC"
    return "other"
