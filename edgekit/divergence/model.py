"""What a runtime adapter hands to the trace: a model's layers and the tensors it computed."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Layer:
    """One operation of a model, in execution order.

    ``key`` names its output tensor the same way in the float and quantized artifacts of one
    format (it is how the two are matched); ``name`` is what the converter's exclusion list takes;
    ``inputs`` are the keys of the traced tensors it reads (graph inputs and constants omitted).
    """

    key: str
    name: str
    op_type: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuantParams:
    """How one activation tensor was quantized (per tensor), and its weights' granularity."""

    scale: float | None = None
    zero_point: int | None = None
    qmin: int = -128
    qmax: int = 127
    weight_channels: int | None = None  # number of weight scales: 1 = per-tensor

    def representable(self) -> tuple[float, float] | None:
        """The float range the quantized tensor can hold, or None when it is not quantized."""
        if not self.scale or self.zero_point is None:
            return None
        return (self.qmin - self.zero_point) * self.scale, (self.qmax - self.zero_point) * self.scale


@dataclass
class ModelTrace:
    """A model's layers and a way to run it on its feeds one at a time.

    ``samples()`` runs the model afresh and yields, per feed, every exposed float tensor by layer key
    (as float32): the trace never holds more than one sample's tensors. ``keys`` are the tensors the
    adapter asked the runtime for (those a sample lacks are the ones the runtime could not expose).
    """

    layers: list[Layer]
    samples: Callable[[], Iterator[dict[str, np.ndarray]]]
    quant: dict[str, QuantParams] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


def as_float(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One sample's tensors as float32 arrays (what the statistics read)."""
    return {key: np.asarray(value, dtype=np.float32) for key, value in values.items()}


def feed_for(feed: dict[str, np.ndarray], names: list[str], dtypes: list[np.dtype]) -> dict[str, np.ndarray]:
    """``feed`` re-keyed for a model with input ``names``: by name, else by position."""
    if all(n in feed for n in names):
        values = [feed[n] for n in names]
    elif len(feed) == len(names):
        values = list(feed.values())
    else:
        from edgekit.errors import DataError

        raise DataError(
            f"the evaluation data has inputs {sorted(feed)} but the model expects {names}",
            "give one array per model input, keyed by input name",
        )
    return {n: np.asarray(v).astype(d, copy=False) for n, v, d in zip(names, values, dtypes)}
