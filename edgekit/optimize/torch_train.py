"""Training loops of the PyTorch backend: batches from numpy data, the task's loss, distillation's soft targets.

``x`` is an array (one input) or a dict {input name: array} (called as keyword arguments); samples first.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgekit.metrics import top1_accuracy
from edgekit.optimize.backend import StepProgress, TrainingSet

SEED = 0
_EPSILON = 1e-7


def sample_count(x: Any) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def head(x: Any, count: int) -> Any:
    """The first ``count`` samples of ``x`` (numpy)."""
    return {name: array[:count] for name, array in x.items()} if isinstance(x, dict) else x[:count]


def take(x: Any, index: Any) -> Any:
    """Rows ``index`` of ``x`` as torch tensors (a dict of them for several inputs)."""
    import torch

    if isinstance(x, dict):
        return {name: torch.from_numpy(np.ascontiguousarray(array[index])) for name, array in x.items()}
    return torch.from_numpy(np.ascontiguousarray(x[index]))


def call(model: Any, inputs: Any) -> Any:
    """The model's first output tensor on ``inputs`` (a tensor, or a dict of keyword arguments)."""
    outputs = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    if isinstance(outputs, dict):
        return next(iter(outputs.values()))
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def predict(model: Any, x: Any, batch_size: int = 256) -> np.ndarray:
    """The model's first output on ``x`` in eval mode, as numpy."""
    import torch

    model.eval()
    count = sample_count(x)
    with torch.no_grad():
        parts = [call(model, take(x, slice(start, start + batch_size))).detach().cpu().numpy()
                 for start in range(0, count, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


def as_logits(outputs: Any, data: TrainingSet) -> Any:
    """Logits as they are; probabilities through their log."""
    import torch

    return outputs if data.from_logits else torch.log(outputs.clamp_min(_EPSILON))


def task_loss(outputs: Any, targets: Any, data: TrainingSet) -> Any:
    """Cross-entropy on integer labels for classification (from logits or probabilities), MSE otherwise."""
    import torch.nn.functional as F

    if data.task == "classification":
        return F.cross_entropy(as_logits(outputs, data), targets)
    return F.mse_loss(outputs, targets.reshape(outputs.shape))


def soft_loss(outputs: Any, teacher: Any, temperature: float, data: TrainingSet) -> Any:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))`` for classification, MSE to the teacher otherwise."""
    import torch.nn.functional as F

    if data.task != "classification":
        return F.mse_loss(outputs, teacher)
    log_student = F.log_softmax(as_logits(outputs, data) / temperature, dim=-1)
    log_teacher = F.log_softmax(as_logits(teacher, data) / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)


def train(
    model: Any, data: TrainingSet, epochs: int, learning_rate: float, batch_size: int, progress: StepProgress,
    what: str, *, loss_fn: Callable[[Any, Any, Any], Any] | None = None, extra: np.ndarray | None = None,
    before_epoch: Callable[[int], None] | None = None, after_step: Callable[[], None] | None = None,
) -> None:
    """Adam on ``data.x_train`` in place for ``epochs``, reporting held-out numbers after each epoch.

    ``loss_fn(outputs, labels, extra_rows)`` replaces the task loss (``extra`` holds per-sample rows, e.g.
    a teacher's outputs); ``before_epoch(epoch)`` and ``after_step()`` hook pruning schedules and masks in.
    """
    import torch

    if epochs < 1:
        return
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    labels = torch.from_numpy(np.asarray(data.y_train))
    extras = torch.from_numpy(np.asarray(extra, np.float32)) if extra is not None else None
    count = sample_count(data.x_train)
    for epoch in range(epochs):
        if before_epoch is not None:
            before_epoch(epoch)
        model.train()
        losses = []
        for batch in _batches(count, batch_size, generator):
            outputs = call(model, take(data.x_train, batch.numpy()))
            if loss_fn is None:
                loss = task_loss(outputs, labels[batch], data)
            else:
                loss = loss_fn(outputs, labels[batch], extras[batch] if extras is not None else None)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            losses.append(loss.item())
        progress((epoch + 1) / epochs, f"{what}: epoch {epoch + 1}/{epochs} ({_summary(model, data, losses)})")
    model.eval()


def _batches(count: int, batch_size: int, generator: Any) -> Iterator[Any]:
    import torch

    order = torch.randperm(count, generator=generator)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def _summary(model: Any, data: TrainingSet, losses: list[float]) -> str:
    text = f"loss {np.mean(losses):.4f}"
    predicted = predict(model, data.x_val)
    if data.task == "classification":
        return text + f", val_accuracy {top1_accuracy(predicted, data.y_val):.4f}"
    return text + f", val_mse {np.mean((predicted.reshape(np.shape(data.y_val)) - data.y_val) ** 2):.4f}"
