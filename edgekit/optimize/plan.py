"""How ``edgekit.convert`` takes its optimization options: steps or a recipe, the data they need, the precisions."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.errors import DataError, InvalidOptionError
from edgekit.optimize.recipe import Recipe, load_recipe
from edgekit.optimize.run import check_chain
from edgekit.optimize.steps import DistillStep, PruneStep, QatStep, Step
from edgekit.sources import framework_of_object, is_in_memory


def resolve_steps(optimizations: Any, train_data: Any, val_data: Any) -> tuple[list[Step], Any, Any]:
    """The steps to run and the train/val data (a recipe's files fill in data not given directly)."""
    if optimizations is None:
        return [], train_data, val_data
    if isinstance(optimizations, (str, Path)):
        optimizations = load_recipe(optimizations)
    if isinstance(optimizations, Recipe):
        train_data = train_data if train_data is not None else optimizations.train_data
        val_data = val_data if val_data is not None else optimizations.val_data
        optimizations = optimizations.steps
    if isinstance(optimizations, (PruneStep, QatStep, DistillStep)):
        optimizations = [optimizations]
    steps = list(optimizations)
    for step in steps:
        if not isinstance(step, (PruneStep, QatStep, DistillStep)):
            raise InvalidOptionError(
                f"optimizations must be edgekit.prune(...), edgekit.qat(...) or edgekit.distill(...) steps, got {type(step).__name__}",
                "or give the path of a recipe file",
            )
    if steps:
        check_chain(steps)
        if train_data is None or val_data is None:
            missing = " and ".join(n for n, v in (("train_data", train_data), ("val_data", val_data)) if v is None)
            raise DataError(
                f"optimization steps need labelled data: {missing} not given",
                "give train_data=(x, y) and val_data=(x, y) (or .npz files with arrays x and y); val_data measures each step",
            )
    return steps, train_data, val_data


def precisions_with(steps: Sequence[Step], precisions: list[str], explicit: bool) -> list[str]:
    """QAT builds int8 only: the default becomes int8, and other precisions asked for are refused."""
    if not any(isinstance(step, QatStep) for step in steps):
        return precisions
    if not explicit:
        return ["int8"]
    others = [p for p in precisions if p != "int8"]
    if others:
        raise InvalidOptionError(
            f"a quantization-aware trained model builds int8 artifacts only, not {', '.join(others)}",
            "ask for precision int8 with qat, and build float artifacts in a separate convert without the qat step",
        )
    return precisions


def isolation(model: Any, steps: Sequence[Step], isolate: bool | None) -> bool:
    """Whether the build runs in a worker process (``isolate=None``: model files do, in-memory models do not).

    Keras training imports tensorflow-model-optimization, which switches its whole process to Keras 2, so
    Keras models are optimized in the worker even when given in memory (they are saved for it). An
    in-memory PyTorch teacher cannot be handed to another process, so it keeps the build in this one.
    """
    if isolate is not None:
        return isolate
    framework = framework_of_object(model) if is_in_memory(model) else None
    if steps and framework in ("keras2", "keras3"):
        return True
    torch_teacher = any(
        isinstance(step, DistillStep) and step.teacher is not None and framework_of_object(step.teacher) == "torch"
        for step in steps
    )
    return not is_in_memory(model) and not torch_teacher


def save_for_worker(model: Any, steps: list[Step], folder: Path) -> tuple[Path, list[Step]]:
    """An in-memory Keras model (and in-memory Keras teachers) saved as .keras files the worker loads safely."""
    path = _save_keras(model, folder / "source.keras")
    saved = []
    for index, step in enumerate(steps):
        if isinstance(step, DistillStep) and step.teacher is not None and is_in_memory(step.teacher):
            if framework_of_object(step.teacher) not in ("keras2", "keras3"):
                raise InvalidOptionError("a Keras student needs a Keras teacher", "give a Keras teacher model or its file")
            step = step.model_copy(update={"teacher": str(_save_keras(step.teacher, folder / f"teacher-{index}.keras"))})
        saved.append(step)
    return path, saved


def _save_keras(model: Any, path: Path) -> Path:
    try:
        model.save(path)
    except Exception as exc:  # custom layers a file cannot describe, unbuilt models, ...
        raise InvalidOptionError(
            f"the in-memory Keras model cannot be saved for training in a worker process: {type(exc).__name__}: {exc}",
            "save the model to a .keras file yourself and pass its path",
        ) from None
    return path
