"""What a runtime adapter hands to the trace: a model's layers and the tensors it computed."""
from __future__ import annotations

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
    """A model run on a list of feeds with every intermediate tensor kept (concatenated over feeds)."""

    layers: list[Layer]
    values: dict[str, np.ndarray]
    quant: dict[str, QuantParams] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    missing: list[str] = field(default_factory=list)  # keys the runtime could not expose


def stack(per_feed: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate each key's per-feed arrays along the first (batch) axis; keys missing in some feed are dropped."""
    if not per_feed:
        return {}
    keys = [k for k in per_feed[0] if all(k in feed for feed in per_feed)]
    out = {}
    for key in keys:
        arrays = [np.asarray(feed[key], dtype=np.float32) for feed in per_feed]
        if all(a.shape[1:] == arrays[0].shape[1:] and a.ndim > 0 for a in arrays):
            out[key] = np.concatenate(arrays, axis=0)
        else:
            out[key] = np.stack([a.reshape(-1) for a in arrays]) if len({a.size for a in arrays}) == 1 else arrays[0][None]
    return out


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
