"""The data model of a compatibility check: ops found in a model, findings, and the report over them.

Compute per op is an estimate from shapes: multiply-accumulates (MACs) for convolutions, dense layers
and matrix products; the number of output elements for everything else. It is a way to rank what falls
back, not a latency prediction.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "fallback", "change", "info"]
Certainty = Literal["known", "likely"]


def elements(shape: tuple[int | None, ...] | list[int] | None) -> int:
    """The number of elements of ``shape`` over its known positive dimensions (0 when none is known)."""
    dims = [int(d) for d in (shape or ()) if d is not None and int(d) > 0]
    return math.prod(dims) if dims else 0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpInfo(_Frozen):
    """One layer or op of a source model or an artifact.

    ``targets`` maps a format (tflite, onnx, openvino) to the op names this one becomes there: exact for
    an artifact's own ops and for ONNX ops going to ONNX, an approximate mapping otherwise (the check
    marks such findings ``certainty='likely'``).
    """

    name: str
    op: str
    targets: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    compute: int = 0
    output_shape: tuple[int | None, ...] | None = None
    refused: dict[str, str] = Field(default_factory=dict)  # format -> why that format's route cannot convert this op


class Finding(_Frozen):
    """Something the target cannot run, runs on a fallback, or needs changed, with a concrete hint.

    ``severity``: ``error`` breaks a hard limit of the device; ``fallback`` runs, but not on the
    accelerator; ``change`` needs an option or a model change (edgekit may do it for you, see the hint);
    ``info`` is worth knowing. ``kind='route'``: the converter for that format refuses the op (an error for that
    format only: a build still makes its other formats).
    """

    kind: Literal["op", "dynamic_shape", "dtype", "precision", "layout", "route"]
    severity: Severity
    certainty: Certainty
    message: str
    hint: str
    layer: str | None = None
    op: str | None = None
    format: str | None = None
    compute: int = 0


class OpStats(_Frozen):
    """How many ops, and how much of the estimated compute, would not run on the accelerator in one format."""

    ops_total: int = 0
    ops_fallback: int = 0
    compute_total: int = 0
    compute_fallback: int = 0
    opset_known: bool = False
    fallback_ops: tuple[str, ...] = ()  # the names of the ops that would not run on the accelerator

    @property
    def fallback_fraction(self) -> float:
        """Share of the estimated compute that would not run on the accelerator."""
        return self.compute_fallback / self.compute_total if self.compute_total else 0.0


class CompatibilityReport(_Frozen):
    """Findings of one check of a model (``stage='source'``) or one artifact (``stage='artifact'``) for a target."""

    target: str
    stage: Literal["source", "artifact"]
    formats: tuple[str, ...]
    precision: str
    findings: tuple[Finding, ...] = ()
    stats: dict[str, OpStats] = Field(default_factory=dict)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """Findings that break a hard limit of the device."""
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def ok(self) -> bool:
        return not self.blocking


class BudgetCheck(_Frozen):
    """One budget of a build against one artifact: measured value, limit and verdict."""

    name: str
    limit: float
    value: float | None = None
    status: Literal["passed", "failed", "inconclusive", "not_measured"]
    message: str = ""
    interval: tuple[float, float] | None = None  # the value's confidence interval; the verdict is the interval's
    samples_needed: int | None = None  # inconclusive: validation samples that would decide it at the observed value
