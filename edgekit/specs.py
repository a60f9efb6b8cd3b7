"""Data model of a build: tensor specs, model sources, artifacts, validation results."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgekit.compat.report import BudgetCheck, CompatibilityReport
from edgekit.contract.schema import Contract
from edgekit.optimize.report import OptimizationReport

Framework = Literal["keras2", "keras3", "torch", "onnx"]
Format = Literal["tflite", "onnx", "openvino", "executorch"]
Precision = Literal["fp32", "fp16", "int8", "dynamic"]
Layout = Literal["NCHW", "NHWC", "NCW", "NWC", "NC", "scalar", "other"]

FRAMEWORKS: tuple[str, ...] = ("keras2", "keras3", "torch", "onnx")
FORMATS: tuple[str, ...] = ("tflite", "onnx", "openvino", "executorch")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "dynamic")


def shape_text(shape: tuple[int | None, ...]) -> str:
    """A shape as people read it, dynamic dimensions as ``?``: ``(?, 8, 8, 1)``."""
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Frozen):
    """One input or output: ``None`` in ``shape`` marks a dynamic dimension."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    layout: Layout = "other"
    scale: float | None = None
    zero_point: int | None = None

    @property
    def is_dynamic(self) -> bool:
        return any(dim is None for dim in self.shape)

    def describe(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        quant = f" q(scale={self.scale:.4g}, zp={self.zero_point})" if self.scale else ""
        return f"{self.name}: {self.dtype}[{dims}] {self.layout}{quant}"


class ModelSource(_Frozen):
    """What edgekit learned about a source model: framework, I/O specs and content hash."""

    framework: Framework
    kind: str = Field(description="how the model was given: keras-file, h5, savedmodel, torchscript, pt2, onnx, in-memory")
    path: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    task: Literal["classifier", "other"] = "other"


OutputKind = Literal["classifier", "embedding", "regression", "detection", "tensor"]
OUTPUT_KINDS: tuple[str, ...] = ("classifier", "embedding", "regression", "detection", "tensor")
DataOrigin = Literal["validation_data", "val_data", "held_out", "calibration", "synthetic"]


class Check(_Frozen):
    """One measured statistic with its confidence interval and, when it has a threshold, its verdict."""

    metric: str
    value: float
    low: float
    high: float
    samples: int
    method: str = Field(description="how the interval was computed: exact binomial (Clopper-Pearson) or bootstrap")
    threshold: float | None = None
    larger_is_better: bool = True
    status: Literal["passed", "failed", "inconclusive", "measured"] = "measured"
    samples_needed: int | None = None  # inconclusive: validation samples that would decide it at the observed value

    def describe(self) -> str:
        text = f"{self.metric} {self.value:.6g} [{self.low:.6g}, {self.high:.6g}]"
        if self.threshold is None:
            return text
        side = ">=" if self.larger_is_better else "<="
        more = f"; about {self.samples_needed} samples would decide it" if self.samples_needed else ""
        return f"{text} vs {side} {self.threshold}: {self.status}{more}"


class OutputMetrics(_Frozen):
    """Parity of one output of an artifact against the reference model, judged by the rule of its kind."""

    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    top1_agreement: float | None = None
    kind: OutputKind = "tensor"
    kind_source: Literal["declared", "guessed"] = "guessed"
    rule: str = ""  # what judged this output, e.g. "cosine >= 0.98 and top-1 agreement >= 0.95"
    relative_error: float | None = None  # mean per-sample L2 error over the output's RMS norm
    checks: tuple[Check, ...] = ()
    status: Literal["passed", "failed", "inconclusive"] = "passed"

    def check(self, metric: str) -> Check | None:
        return next((c for c in self.checks if c.metric == metric), None)


class ValidationResult(_Frozen):
    """Parity of an artifact against its source over the validation samples."""

    status: Literal["passed", "failed", "inconclusive", "error"]
    samples: int
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    cosine: float | None = None
    top1_agreement: float | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    outputs: tuple[OutputMetrics, ...] = ()
    executed_precision: str | None = None
    int8_weight_fraction: float | None = None  # weights stored as int8/uint8, counted in the artifact file
    accuracy: float | None = None  # top-1 against the labels of val_data, when the build was given labels
    reference_accuracy: float | None = None  # the same for the model that was converted (after any optimization)
    message: str | None = None
    data_origin: str = "validation_data"  # on what data: validation_data, held out of calibration, calibration, synthetic
    on_calibration: bool = False  # the validation samples were also the calibration samples (asked for explicitly)
    confidence: float = 0.95
    cosine_interval: tuple[float, float] | None = None  # of the output with the lowest cosine
    top1_interval: tuple[float, float] | None = None
    accuracy_check: Check | None = None
    accuracy_drop_check: Check | None = None  # reference accuracy minus the artifact's, paired bootstrap
    samples_needed: int | None = None  # inconclusive: the largest count any undecided check would need


class QuantizerFallback(_Frozen):
    """A node the quantizer could not handle as asked, and what was done instead (edgekit.converters._ort_fallback)."""

    node: str
    op_type: str
    reason: str  # the quantizer's own message
    action: Literal["per-tensor weights", "kept in float"]


class Artifact(_Frozen):
    """One converted model file (with its companion files) and its validation."""

    format: Format
    precision: Precision
    route: str
    path: str
    files: tuple[str, ...]
    size_bytes: int
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    validation: ValidationResult
    convert_seconds: float
    notes: tuple[str, ...] = ()
    compatibility: CompatibilityReport | None = None  # the artifact's own ops checked against the target
    budgets: tuple[BudgetCheck, ...] = ()
    contract: Contract | None = None  # the deployment contract the artifact carries (edgekit.contract)
    quantizer_fallbacks: tuple[QuantizerFallback, ...] = ()

    @property
    def passed(self) -> bool:
        """Only when every interval cleared its bar: an inconclusive verdict is not passed."""
        return self.validation.status == "passed" and all(b.status in ("passed", "not_measured") for b in self.budgets)

    @property
    def verdict(self) -> str:
        """passed, failed or inconclusive, over validation and budgets together."""
        if self.passed:
            return "passed"
        statuses = [self.validation.status, *(b.status for b in self.budgets)]
        return "failed" if "failed" in statuses or "error" in statuses else "inconclusive"


class RouteFailure(_Frozen):
    """A route that produced no artifact, with the error's message and hint."""

    format: Format
    precision: Precision
    route: str
    error: str
    hint: str = ""
    detail: str = ""  # the converter's full error text when ``error`` only quotes its cause
    log: str | None = None  # the worker's log of the failed route, saved beside the manifest


class Build(_Frozen):
    """The result of :func:`edgekit.convert`: artifacts, failures and where the manifest is."""

    output_dir: str
    manifest_path: str
    source: ModelSource
    target: str
    artifacts: tuple[Artifact, ...]
    failures: tuple[RouteFailure, ...] = ()
    optimization: OptimizationReport | None = None  # the training-time steps run before conversion
    allow_inconclusive: bool = False  # accept inconclusive verdicts as the gate (never as "passed")

    @property
    def passed(self) -> bool:
        return not self.failures and all(a.passed for a in self.artifacts)

    @property
    def verdict(self) -> str:
        """passed, failed or inconclusive over every route."""
        if self.passed:
            return "passed"
        return "failed" if self.failures or any(a.verdict == "failed" for a in self.artifacts) else "inconclusive"

    @property
    def accepted(self) -> bool:
        """The gate: passed, or only inconclusive with ``allow_inconclusive``."""
        return self.passed or (self.allow_inconclusive and self.verdict == "inconclusive")

    def artifact(self, format: str, precision: str | None = None) -> Artifact:
        """The artifact of ``format`` (and ``precision``), or KeyError."""
        for item in self.artifacts:
            if item.format == format and (precision is None or item.precision == precision):
                return item
        raise KeyError(f"no {format} {precision or ''} artifact in this build")

