"""What a framework's optimization backend provides (``edgekit.optimize.keras``, ``edgekit.optimize.torch``).

The chain runner (``edgekit.optimize.run``) checks the data, runs the steps in order and records each
step's metrics; a backend only trains and transforms models of its framework. Every backend function
returns a new model and leaves the model it was given untouched.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from edgekit.optimize.steps import DistillStep, PruneStep, QatStep

#: the seed every Keras training function sets first, so that its numbers are reproducible
SEED = 0

#: progress of one step: (fraction in [0, 1], message)
StepProgress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainingSet:
    """Checked training and held-out data for one build.

    ``x_*`` are arrays in the model's own input layout (a dict {input name: array} for several inputs).
    ``y_*`` are integer class labels of shape (n,) for ``task="classification"`` or target arrays shaped
    like the model's output for ``"regression"``. ``from_logits`` says whether the model outputs logits
    (True) or probabilities (False); it is measured on the model before the first step.
    """

    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    task: Literal["classification", "regression"]
    from_logits: bool
    num_classes: int | None = None


@dataclass(frozen=True)
class ModelStats:
    """Size facts of a model: parameters (all, and non-zero), and bytes of its float32 weights."""

    parameters: int
    nonzero_parameters: int
    weight_bytes: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero_parameters / self.parameters if self.parameters else 0.0


class Backend(Protocol):
    """Module-level functions a framework backend defines."""

    def prepare(self, model: Any) -> Any:
        """A trainable copy of ``model`` in the form the backend trains (a Keras 3 model becomes tf_keras)."""

    def load_teacher(self, teacher: Any) -> Any:
        """A teacher given as a path or in-memory model, loaded safely and prepared."""

    def predict(self, model: Any, x: Any, batch_size: int = 256) -> np.ndarray:
        """The model's (single) output on ``x`` as a numpy array."""

    def stats(self, model: Any) -> ModelStats:
        """Parameter counts and weight bytes (structured pruning lowers ``parameters``)."""

    def prune(self, model: Any, step: PruneStep, data: TrainingSet, progress: StepProgress) -> Any:
        """Unstructured (zeroed, stripped of pruning wrappers) or structured (channels removed) pruning, fine-tuned."""

    def qat(self, model: Any, step: QatStep, data: TrainingSet, progress: StepProgress) -> Any:
        """A fake-quantized model fine-tuned on ``data``; its ranges are what the int8 artifacts use."""

    def derive_student(self, teacher: Any, step: DistillStep, data: TrainingSet) -> Any:
        """A narrower copy of ``teacher`` (``step.student_width`` of its channels, ``step.student_init``);
        ``data`` gives a sample input to backends that trace the model."""

    def distill(self, student: Any, teacher: Any, step: DistillStep, data: TrainingSet, progress: StepProgress) -> Any:
        """The student trained on soft targets from the teacher (temperature, alpha) and on the labels."""

    def fit(self, model: Any, data: TrainingSet, epochs: int, learning_rate: float, batch_size: int, progress: StepProgress) -> Any:
        """The model trained on the labels alone (used for baselines: a student without a teacher)."""


def steps_per_epoch(data: TrainingSet, batch_size: int) -> int:
    """Batches of ``batch_size`` in one pass over ``data``'s training inputs."""
    x = data.x_train
    count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    return max(1, math.ceil(count / batch_size))
