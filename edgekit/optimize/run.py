"""Run an optimization chain on a loaded source: steps in order, metrics after each, the accuracy budget enforced.

This runs where the source model is loaded (the build's worker process for model files), because the Keras
backend imports tensorflow-model-optimization, which switches the whole process to Keras 2.
"""
from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError, OptimizationBudgetError, first_line
from edgekit.metrics import top1_accuracy
from edgekit.optimize.backend import Backend, TrainingSet
from edgekit.optimize.labelled import LabelledData
from edgekit.optimize.report import OptimizationReport, StepRecord, records_table
from edgekit.optimize.steps import DistillStep, PruneStep, QatStep, Step
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.registry import unique_table
from edgekit.sources.base import LoadedSource


def backend_table(entries: list[tuple[str, str]]) -> dict[str, str]:
    """The backend table from (framework, module) entries; a framework given twice is an error."""
    return unique_table(entries, lambda framework: f"optimization backend '{framework}'")


BACKENDS: dict[str, str] = backend_table([
    ("keras2", "edgekit.optimize.keras"),
    ("keras3", "edgekit.optimize.keras"),
    ("torch", "edgekit.optimize.torch"),
])


def backend_for(framework: str) -> Backend:
    """The training backend of ``framework``; ONNX graphs cannot be trained."""
    module = BACKENDS.get(framework)
    if module is None:
        raise InvalidOptionError(
            f"{framework} models cannot be pruned, quantization-aware trained or distilled "
            f"(optimization backends exist for {', '.join(BACKENDS)})",
            "optimize the Keras or PyTorch model the graph was exported from, then convert that",
        )
    return importlib.import_module(module)  # type: ignore[return-value]


def check_chain(steps: Sequence[Step]) -> None:
    """Refuse chains that cannot work, before any training: QAT must come last and only once."""
    kinds = [step.kind for step in steps]
    if "qat" in kinds and kinds.index("qat") != len(kinds) - 1:
        raise InvalidOptionError(
            "qat must be the last optimization step",
            "prune and distill first; quantization-aware training fits the ranges of the final weights",
        )


def run_chain(
    source: LoadedSource, steps: Sequence[Step], train: LabelledData, val: LabelledData,
    max_accuracy_drop: float | None = None, progress: ProgressCallback = ignore,
) -> tuple[Any, OptimizationReport]:
    """The optimized model (a new object; the source's model is untouched) and the metrics of every step."""
    check_chain(steps)
    backend = backend_for(source.framework)
    progress(ProgressEvent("optimize", 0.0, "preparing the model for training"))
    model = backend.prepare(source.model)
    data = _training_set(backend, model, train, val)
    records = [_record("source", {}, backend, model, data, 0.0)]
    for index, step in enumerate(steps):
        stage = f"optimize:{step.kind}"

        def step_progress(fraction: float, message: str, stage: str = stage) -> None:
            progress(ProgressEvent(stage, fraction, message))

        step_progress(0.0, f"step {index + 1}/{len(steps)}: {step.label}")
        started = time.perf_counter()
        model = _apply(backend, step, model, data, step_progress)
        record = _record(step.label, step.model_dump(mode="json"), backend, model, data, time.perf_counter() - started)
        if isinstance(step, DistillStep) and step.teacher is not None:
            record = record.model_copy(update={"options": {**record.options, "teacher": step.teacher_description}})
        records.append(record)
        _check_budget(records, max_accuracy_drop, data)
    report = OptimizationReport(
        framework=source.framework, task=data.task, train_samples=len(train), val_samples=len(val),
        max_accuracy_drop=max_accuracy_drop, records=tuple(records), fake_quantized=bool(steps) and steps[-1].kind == "qat",
    )
    return model, report


def _training_set(backend: Backend, model: Any, train: LabelledData, val: LabelledData) -> TrainingSet:
    outputs = backend.predict(model, _head(val.model_x(), 64))
    probabilities = outputs.ndim == 2 and outputs.min() >= 0 and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)
    return TrainingSet(
        x_train=train.model_x(), y_train=train.y, x_val=val.model_x(), y_val=val.y, task=train.task,
        from_logits=not probabilities, num_classes=train.num_classes,
    )


def _head(x: Any, count: int) -> Any:
    return {name: array[:count] for name, array in x.items()} if isinstance(x, dict) else x[:count]


def _apply(backend: Backend, step: Step, model: Any, data: TrainingSet, progress: Any) -> Any:
    if isinstance(step, PruneStep):
        return backend.prune(model, step, data, progress)
    if isinstance(step, QatStep):
        return backend.qat(model, step, data, progress)
    if step.teacher is not None:
        teacher = backend.load_teacher(step.teacher)
        _check_teacher(backend, teacher, model, data, step.teacher_description)
        return backend.distill(model, teacher, step, data, progress)
    student = backend.derive_student(model, step, data)
    return backend.distill(student, model, step, data, progress)


def _check_teacher(backend: Backend, teacher: Any, student: Any, data: TrainingSet, described: str | None) -> None:
    """A teacher must answer the student's inputs with outputs of the student's shape."""
    sample = _head(data.x_val, 2)
    try:
        taught = backend.predict(teacher, sample)
    except Exception as exc:  # the teacher cannot even take the student's inputs
        raise InvalidOptionError(
            f"the teacher ({described}) cannot run on the student's inputs: {type(exc).__name__}: {first_line(exc)}",
            "the teacher must take the same inputs as the model being optimized",
        ) from None
    expected = backend.predict(student, sample).shape
    if taught.shape != expected:
        raise InvalidOptionError(
            f"the teacher ({described}) outputs shape {taught.shape[1:]} per sample, the student {expected[1:]}",
            "distillation needs a teacher trained for the same task, with the same number of outputs (classes)",
        )


def evaluate(backend: Backend, model: Any, data: TrainingSet) -> tuple[float | None, float | None]:
    """(top-1 accuracy, None) for a classifier, (None, mean squared error) otherwise, on the held-out data."""
    predicted = backend.predict(model, data.x_val)
    if data.task == "classification":
        return top1_accuracy(predicted, data.y_val), None
    return None, float(np.mean((predicted.reshape(data.y_val.shape) - data.y_val) ** 2))


def _record(name: str, options: dict[str, Any], backend: Backend, model: Any, data: TrainingSet, seconds: float) -> StepRecord:
    accuracy, loss = evaluate(backend, model, data)
    stats = backend.stats(model)
    return StepRecord(
        step=name, options=options, accuracy=accuracy, loss=loss, parameters=stats.parameters,
        nonzero_parameters=stats.nonzero_parameters, sparsity=round(stats.sparsity, 6), weight_bytes=stats.weight_bytes,
        seconds=round(seconds, 2),
    )


def _check_budget(records: list[StepRecord], max_drop: float | None, data: TrainingSet) -> None:
    if max_drop is None or data.task != "classification":
        return
    source, last = records[0], records[-1]
    drop = source.accuracy - last.accuracy
    if drop > max_drop + 1e-9:
        raise OptimizationBudgetError(
            f"{last.step} dropped held-out accuracy from {source.accuracy:.2%} to {last.accuracy:.2%} "
            f"({drop * 100:.1f} points; the budget allows {max_drop * 100:.1f}); the build stopped here\n"
            f"{records_table(records)}",
            "fine-tune longer (epochs=), prune less (sparsity=), give more training data, "
            "or raise the budget (budgets={'max_accuracy_drop': ...} / --budget max_accuracy_drop=...)",
        )
