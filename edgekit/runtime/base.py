"""The Runner interface shared by every runtime."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edgekit.specs import TensorSpec


class Runner(ABC):
    """An artifact loaded in a runtime: named inputs in, named outputs out (float outputs dequantized)."""

    runtime: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    #: the precision the device really executes, e.g. "f32" even where the CPU could run bf16
    executed_precision: str = "f32"

    @abstractmethod
    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference; ``feed`` maps input names to arrays."""


def quantize(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float values to the integer dtype of a quantized input, with its scale and zero point."""
    info = np.iinfo(np.dtype(spec.dtype))
    scaled = np.round(array / spec.scale) + spec.zero_point
    return np.clip(scaled, info.min, info.max).astype(spec.dtype)


def dequantize(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer values of a quantized output back to float32."""
    return ((array.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)
