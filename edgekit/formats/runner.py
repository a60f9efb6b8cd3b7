"""The Runner interface shared by every runtime."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

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

    # -- profiling: inputs prepared once, then a lean call per timed run --------------------------

    #: what actually executes the model: the delegate, execution provider or device used
    accelerator: str = "CPU"

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        """Convert ``feed`` once into whatever :meth:`run_prepared` needs (default: the feed itself)."""
        return feed

    def run_prepared(self, prepared: Any) -> None:
        """One inference on inputs from :meth:`prepare`, outputs left in the runtime (for timing)."""
        self.run(prepared)

    def op_profile(self, prepared: Any, runs: int) -> list[dict[str, Any]] | None:
        """Per-operation times (``name``, ``type``, ``ms`` per run) over ``runs`` inferences, or None
        where the runtime does not expose them. Only runners opened with ``profile_ops=True`` give them."""
        return None


def quantize(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float values to the integer dtype of a quantized input, with its scale and zero point."""
    info = np.iinfo(np.dtype(spec.dtype))
    scaled = np.round(array / spec.scale) + spec.zero_point
    return np.clip(scaled, info.min, info.max).astype(spec.dtype)


def dequantize(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer values of a quantized output back to float32."""
    return ((array.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)
