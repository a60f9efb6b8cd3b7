"""The divergence report: per-layer parity of a quantized artifact against its float reference (versioned JSON)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgekit.data_checks import LayerCoverage

REPORT_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LayerDivergence(_Model):
    """One layer of the artifact compared with the same layer of the float reference.

    ``error`` is 1 - cosine. ``inherited_error`` is the largest error among the traced tensors the layer
    reads (0 for layers that read only graph inputs); ``added_error`` = max(0, error - inherited_error),
    the part of the error that appears at this layer.
    """

    index: int
    name: str
    key: str
    op_type: str
    inputs: list[str] = Field(default_factory=list)
    cosine: float
    relative_error: float
    error: float
    inherited_error: float
    added_error: float
    scale: float | None = None
    zero_point: int | None = None
    weight_channels: int | None = None
    calibration_range: tuple[float, float] | None = None
    evaluation_range: tuple[float, float]
    saturated_fraction: float | None = None
    outlier_ratio: float


class Culprit(_Model):
    """A layer that causes much of the loss, why, and what to do about it."""

    name: str
    key: str
    op_type: str
    added_error: float
    share: float = Field(description="added_error as a fraction of the summed added error of all layers")
    reasons: list[str]
    remedies: list[str]
    keep_float: list[str] = Field(description="layer names to keep in float to remove this cause")


class DivergenceReport(_Model):
    """``edgekit.debug``'s answer: where a quantized artifact diverges from its float reference, and why."""

    schema_version: int = REPORT_SCHEMA_VERSION
    artifact: str
    format: Literal["tflite", "onnx", "openvino", "executorch"]
    precision: str
    reference: str
    samples: int
    calibration_samples: int = 0
    output_cosine: float | None = None
    top1_agreement: float | None = None
    layers: list[LayerDivergence]
    culprits: list[Culprit]
    partial: bool = False
    notes: list[str] = Field(default_factory=list)
    #: the reference's per-layer activation ranges on the evaluation data covered by the calibration data's, worst first
    coverage: list[LayerCoverage] = Field(default_factory=list)

    def culprit_names(self) -> list[str]:
        return [c.name for c in self.culprits]
