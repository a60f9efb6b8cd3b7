"""Training-time optimization steps: what ``edgekit.prune``, ``edgekit.qat`` and ``edgekit.distill`` return.

Steps are plain option objects (pydantic, frozen); they run in the order given, before export, on the
framework of the source model (``edgekit.optimize.keras`` or ``edgekit.optimize.torch``).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgekit.errors import InvalidOptionError


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    epochs: int = Field(2, ge=0, le=10_000, description="fine-tuning epochs on train_data")
    learning_rate: float = Field(1e-3, gt=0, lt=1)
    batch_size: int = Field(32, ge=1, le=65_536)

    @property
    def label(self) -> str:
        raise NotImplementedError


class PruneStep(_Step):
    """Magnitude pruning: unstructured (weights zeroed on a schedule) or structured (channels removed)."""

    kind: Literal["prune"] = "prune"
    sparsity: float = Field(0.5, gt=0, lt=1, description="fraction of weights (or channels, if structured) removed")
    structured: bool = False
    schedule: Literal["polynomial", "constant"] = "polynomial"
    exclude: tuple[str, ...] = Field((), description="layer/module names left unpruned")

    @property
    def label(self) -> str:
        return f"prune({'structured ' if self.structured else ''}{self.sparsity:.0%})"


class QatStep(_Step):
    """Quantization-aware training: fake-quant inserted, fine-tuned, carried into the int8 artifacts."""

    kind: Literal["qat"] = "qat"
    epochs: int = Field(3, ge=0, le=10_000)
    learning_rate: float = Field(1e-4, gt=0, lt=1)
    exclude: tuple[str, ...] = Field((), description="layer/module names kept in float")

    @property
    def label(self) -> str:
        return "qat"


class DistillStep(_Step):
    """Knowledge distillation with soft targets.

    With ``teacher`` the model so far is the student. Without it the model so far is the teacher and the
    student is derived from it: its channels cut to ``student_width`` (``student_init="pruned"`` keeps the
    strongest channels' weights, ``"random"`` starts fresh).
    """

    kind: Literal["distill"] = "distill"
    teacher: Any = Field(None, exclude=True, description="a model file path or an in-memory model")
    student_width: float = Field(0.5, gt=0, lt=1)
    student_init: Literal["pruned", "random"] = "pruned"
    temperature: float = Field(4.0, gt=0, le=100)
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft-target loss; 1 - alpha for the labels")
    epochs: int = Field(10, ge=0, le=10_000)

    @field_validator("teacher")
    @classmethod
    def _teacher_kind(cls, value: Any) -> Any:
        from pathlib import Path

        return str(value) if isinstance(value, Path) else value

    @property
    def label(self) -> str:
        return "distill" if self.teacher is not None else f"distill(student {self.student_width:.0%} width)"

    @property
    def teacher_description(self) -> str | None:
        if self.teacher is None:
            return None
        return self.teacher if isinstance(self.teacher, str) else f"in-memory {type(self.teacher).__name__}"


Step = Annotated[Union[PruneStep, QatStep, DistillStep], Field(discriminator="kind")]


def make_step(cls: type[_Step], options: dict[str, Any]) -> Any:
    """``cls(**options)``, with pydantic's errors turned into one InvalidOptionError."""
    try:
        return cls(**options)
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors) or str(exc)
        fields = ", ".join(name for name in cls.model_fields if name != "kind")
        raise InvalidOptionError(f"invalid {cls.model_fields['kind'].default} step: {detail}", f"options: {fields}") from None


def prune(sparsity: float = 0.5, *, structured: bool = False, **options: Any) -> PruneStep:
    """A pruning step: ``sparsity`` of the weights (or channels, ``structured=True``) removed, then fine-tuned."""
    return make_step(PruneStep, {"sparsity": sparsity, "structured": structured, **options})


def qat(epochs: int = 3, **options: Any) -> QatStep:
    """A quantization-aware training step; the build's int8 artifacts carry its fake-quant ranges."""
    return make_step(QatStep, {"epochs": epochs, **options})


def distill(teacher: Any = None, **options: Any) -> DistillStep:
    """A distillation step from ``teacher`` into the model so far (or into a narrower copy of it, without a teacher)."""
    return make_step(DistillStep, {"teacher": teacher, **options})
