"""The deployment contract: what an app must feed an artifact and how to read what it gives back.

One versioned JSON document per artifact (``schema: edgekit.contract/1``): per input its semantic kind,
layout, shape, dtype and quantization, and the preprocessing that turns raw data into that tensor (color
order, value range or mean/std, resize policy; sample rate and frame size for audio); per output its kind,
labels and score threshold; and the artifact-independent hashes of the build it came from (the source
model's sha256 and the build hash, ``edgekit.contract.stamp.build_hash``).

Image preprocessing, stated once: raw pixels ``p`` in [0, 255] (color order ``color``) become
``x = p / 255 * (hi - lo) + lo`` for ``range: [lo, hi]``, or ``x = (p / 255 - mean) / std`` per channel
for ``mean``/``std`` (torchvision's convention); then the artifact's layout, dtype and quantization.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

SCHEMA = "edgekit.contract/1"
InputKind = Literal["image", "audio", "tensor", "tokens"]
OutputKind = Literal["logits", "probabilities", "boxes_scores", "embedding", "sequence", "tensor"]
Color = Literal["RGB", "BGR", "GRAY"]
Resize = Literal["stretch", "center_crop", "letterbox"]
MAX_LABELS = 100_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputContract(_Frozen):
    """One input: what it means and what the app does to raw data before feeding it."""

    name: str
    kind: InputKind = "tensor"
    layout: str | None = None  # NCHW, NHWC, NCW, NWC, NC ... as the artifact takes it
    shape: tuple[int | None, ...] | None = None
    dtype: str | None = None
    scale: float | None = None  # quantized input: real = (q - zero_point) * scale
    zero_point: int | None = None
    color: Color | None = None  # images: channel order of the raw pixels
    range: tuple[float, float] | None = None  # the values the tensor holds (images: pixels mapped linearly)
    mean: tuple[float, ...] | None = None  # images: per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...] | None = None
    model_mean: tuple[float, ...] | None = None  # the model's own first (x - mean) / std, per channel, on what it
    model_std: tuple[float, ...] | None = None  # is fed: what the model does, never applied by the app
    resize: Resize | None = None  # images: how a picture of another size is brought to the input's
    sample_rate: int | None = Field(None, gt=0)  # audio: Hz
    frame_size: int | None = Field(None, gt=0)  # audio: samples per frame fed
    origin: dict[str, str] = Field(default_factory=dict)  # field -> "declared" or what it was inferred from

    @model_validator(mode="after")
    def _consistent(self) -> InputContract:
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values and std {len(self.std)}")
        if (self.model_mean is None) != (self.model_std is None):
            raise ValueError("model_mean and model_std go together")
        if self.model_std is not None and any(s <= 0 for s in self.model_std):
            raise ValueError("model_std must be positive")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range [{self.range[0]}, {self.range[1]}] must be increasing")
        return self

    def value_range(self) -> tuple[float, float] | None:
        """The values the tensor may hold: ``range``, or what mean/std make of pixels in [0, 1]."""
        if self.range is not None:
            return self.range
        if self.mean is not None and self.std is not None:
            lows = [(0.0 - m) / s for m, s in zip(self.mean, self.std)]
            highs = [(1.0 - m) / s for m, s in zip(self.mean, self.std)]
            return min(lows), max(highs)
        return None


class OutputContract(_Frozen):
    """One output: what its values are and how to read them."""

    name: str
    kind: OutputKind = "tensor"
    shape: tuple[int | None, ...] | None = None
    dtype: str | None = None
    scale: float | None = None
    zero_point: int | None = None
    labels: tuple[str, ...] | None = Field(None, max_length=MAX_LABELS)  # class index -> label
    score_threshold: float | None = None
    origin: dict[str, str] = Field(default_factory=dict)


class Contract(_Frozen):
    """The contract of a model, or (with I/O specs filled in) of one artifact."""

    schema_: Literal["edgekit.contract/1"] = Field(SCHEMA, alias="schema")
    inputs: tuple[InputContract, ...] = ()
    outputs: tuple[OutputContract, ...] = ()
    source_sha256: str | None = None
    build_hash: str | None = None
    format: str | None = None  # the artifact's format and precision, when this is an artifact's contract
    precision: str | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_serializer(mode="wrap")
    def _schema_key(self, handler: Any) -> dict[str, Any]:  # "schema" in every dump, aliases asked for or not
        data = handler(self)
        if isinstance(data, dict) and "schema_" in data:
            data = {"schema": data.pop("schema_"), **data}
        return data

    def input(self, name: str) -> InputContract | None:
        return next((item for item in self.inputs if item.name == name), None)

    def output(self, name: str) -> OutputContract | None:
        return next((item for item in self.outputs if item.name == name), None)

    def document(self) -> dict[str, Any]:
        """The contract as a JSON document (what every carrier stores)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces (the same bytes for the same contract)."""
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":"))

    def line(self, where: str, name: str, field: str) -> str:
        """The contract line ``where.name.field = value`` that a feed or data set breaks."""
        item = self.input(name) if where == "inputs" else self.output(name)
        value = getattr(item, field, None) if item is not None else None
        shown = list(value) if isinstance(value, tuple) else value
        return f"{where}.{name}.{field} = {json.dumps(shown)}"
