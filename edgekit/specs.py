"""Data model of a build: tensor specs, model sources, artifacts, validation results."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgekit.compat.report import BudgetCheck, CompatibilityReport
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


class OutputMetrics(_Frozen):
    """Parity of one output of an artifact against the reference model."""

    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    top1_agreement: float | None = None


class ValidationResult(_Frozen):
    """Parity of an artifact against its source over the validation samples."""

    status: Literal["passed", "failed", "error"]
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

    @property
    def passed(self) -> bool:
        return self.validation.status == "passed" and all(b.status != "failed" for b in self.budgets)


class RouteFailure(_Frozen):
    """A route that produced no artifact, with the error's message and hint."""

    format: Format
    precision: Precision
    route: str
    error: str
    hint: str = ""


class Build(_Frozen):
    """The result of :func:`edgekit.convert`: artifacts, failures and where the manifest is."""

    output_dir: str
    manifest_path: str
    source: ModelSource
    target: str
    artifacts: tuple[Artifact, ...]
    failures: tuple[RouteFailure, ...] = ()
    optimization: OptimizationReport | None = None  # the training-time steps run before conversion

    @property
    def passed(self) -> bool:
        return not self.failures and all(a.passed for a in self.artifacts)

    def artifact(self, format: str, precision: str | None = None) -> Artifact:
        """The artifact of ``format`` (and ``precision``), or KeyError."""
        for item in self.artifacts:
            if item.format == format and (precision is None or item.precision == precision):
                return item
        raise KeyError(f"no {format} {precision or ''} artifact in this build")

