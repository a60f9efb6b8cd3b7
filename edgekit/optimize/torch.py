"""The PyTorch backend of training-time optimization (see :class:`edgekit.optimize.backend.Backend`).

Pruning uses ``torch.nn.utils.prune`` (unstructured) and torch-pruning (structured: channels removed),
quantization-aware training uses NNCF, distillation is a plain soft-target loop. Every function works on a
deep copy; ``torch.manual_seed(0)`` starts each training function. Importing this module imports no torch.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError, did_you_mean, first_line
from edgekit.optimize.backend import ModelStats, StepProgress, TrainingSet
from edgekit.optimize.steps import DistillStep, PruneStep, QatStep
from edgekit.optimize.torch_train import SEED, head, soft_loss, task_loss, train
from edgekit.optimize.torch_train import predict as _predict

_NNCF_STATE = "__nncf_hooks"  # fake-quant ranges of a QAT model: not parameters of the model


def prepare(model: Any) -> Any:
    """A deep copy of ``model`` (an nn.Module), in eval mode until a step trains it."""
    import torch

    if isinstance(model, torch.jit.ScriptModule):
        raise InvalidOptionError("TorchScript models cannot be pruned, quantization-aware trained or distilled",
                                 "pass the nn.Module (built from your source code) with example_inputs= instead")
    try:
        prepared = copy.deepcopy(model)
        prepared.train()
        return prepared.eval()
    except (NotImplementedError, RuntimeError) as exc:  # a torch.export program's module refuses train()
        raise InvalidOptionError(
            f"this {type(model).__name__} cannot be trained: {first_line(exc)}",
            "pass the nn.Module (built from your source code) with example_inputs= instead of an exported program",
        ) from exc


def load_teacher(teacher: Any) -> Any:
    """A teacher given as a model file (loaded safely by edgekit) or an in-memory nn.Module, prepared."""
    if isinstance(teacher, (str, Path)):
        from edgekit.sources import load_source

        teacher = load_source(teacher).model
    return prepare(teacher)


def predict(model: Any, x: Any, batch_size: int = 256) -> np.ndarray:
    """The model's first output on ``x`` (eval mode, no gradients)."""
    return _predict(model, x, batch_size)


def stats(model: Any) -> ModelStats:
    """Parameters and floating buffers (batch-norm statistics; fake-quant ranges excluded), non-zero ones, bytes."""
    tensors = [t for name, t in (*model.named_parameters(), *model.named_buffers())
               if t.is_floating_point() and _NNCF_STATE not in name]
    parameters = sum(t.numel() for t in tensors)
    nonzero = sum(int(t.count_nonzero()) for t in tensors)
    return ModelStats(parameters=parameters, nonzero_parameters=nonzero, weight_bytes=4 * parameters)


def fit(model: Any, data: TrainingSet, epochs: int, learning_rate: float, batch_size: int, progress: StepProgress) -> Any:
    """A copy of ``model`` trained on the labels alone."""
    import torch

    torch.manual_seed(SEED)
    trained = copy.deepcopy(model)
    train(trained, data, epochs, learning_rate, batch_size, progress, "training")
    return trained


def prune(model: Any, step: PruneStep, data: TrainingSet, progress: StepProgress) -> Any:
    """Structured (torch-pruning, channels removed, then fine-tuned) or unstructured (global L1 magnitude) pruning."""
    import torch

    from edgekit.optimize.torch_prune import first_sample, prune_channels, prune_weights

    torch.manual_seed(SEED)
    _check_names(model, step.exclude)
    pruned = copy.deepcopy(model)
    if not step.structured:
        return prune_weights(pruned, step, data, progress)
    progress(0.0, f"removing {step.sparsity:.0%} of the channels (torch-pruning)")
    prune_channels(pruned, step.sparsity, first_sample(data.x_train), exclude=step.exclude)
    train(pruned, data, step.epochs, step.learning_rate, step.batch_size, progress, "fine-tuning")
    return pruned


def qat(model: Any, step: QatStep, data: TrainingSet, progress: StepProgress) -> Any:
    """An NNCF fake-quantized copy (``step.exclude`` kept float), fine-tuned, its trained ranges frozen for export.

    The result is an nn.Module torch.export can capture (``edgekit.sources.load_source(model,
    example_inputs=...)`` works on it); its fake-quant calls export as Q/DQ (ONNX) and FakeQuantize (OpenVINO).
    """
    import torch

    from edgekit.optimize.torch_qat import quantize_and_train

    torch.manual_seed(SEED)
    _check_names(model, step.exclude)
    return quantize_and_train(copy.deepcopy(model), step, data, progress)


def derive_student(teacher: Any, step: DistillStep, data: TrainingSet) -> Any:
    """A copy of ``teacher`` with ``step.student_width`` of its channels (torch-pruning): the strongest channels'
    weights (``student_init="pruned"``) or freshly initialised ones (``"random"``).

    torch-pruning traces the model on a sample input: ``data`` gives it (its first training sample).
    """
    import torch

    from edgekit.optimize.torch_prune import first_sample, prune_channels

    torch.manual_seed(SEED)
    student = prune_channels(copy.deepcopy(teacher), 1.0 - step.student_width, first_sample(data.x_train))
    if step.student_init == "random":
        for module in student.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return student.eval()


def distill(student: Any, teacher: Any, step: DistillStep, data: TrainingSet, progress: StepProgress) -> Any:
    """A copy of ``student`` trained on ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(labels, s)``.

    Probabilities (``data.from_logits`` False) enter through their log; regression uses the squared error to
    the teacher's outputs as the soft loss.
    """
    import torch

    torch.manual_seed(SEED)
    probe = head(data.x_train, 2)
    t_shape, s_shape = predict(teacher, probe).shape[1:], predict(student, probe).shape[1:]
    if t_shape != s_shape:
        raise InvalidOptionError(
            f"the teacher's output shape {tuple(t_shape)} differs from the student's {tuple(s_shape)}",
            "distill into a student with the same outputs as the teacher (same classes, same order)",
        )
    soft = predict(teacher, data.x_train, batch_size=max(step.batch_size, 256))
    temperature, alpha = float(step.temperature), float(step.alpha)

    def loss(outputs: Any, labels: Any, teacher_outputs: Any) -> Any:
        return alpha * soft_loss(outputs, teacher_outputs, temperature, data) + (1 - alpha) * task_loss(outputs, labels, data)

    trained = copy.deepcopy(student)
    train(trained, data, step.epochs, step.learning_rate, step.batch_size, progress, "distilling",
          loss_fn=loss, extra=soft)
    return trained


def _check_names(model: Any, names: tuple[str, ...]) -> None:
    modules = [name for name, _ in model.named_modules() if name]
    unknown = [name for name in names if name not in modules]
    if unknown:
        raise InvalidOptionError(
            f"exclude names module(s) the model does not have: {', '.join(unknown)}",
            f"{did_you_mean(unknown[0], modules)}the model's modules are: {', '.join(modules)}",
        )


__all__ = ["derive_student", "distill", "fit", "load_teacher", "predict", "prepare", "prune", "qat", "stats"]
