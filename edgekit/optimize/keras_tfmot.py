"""What tensorflow-model-optimization does for the Keras backend: magnitude pruning and fake quantization.

Importing this module imports tfmot, which sets ``TF_USE_LEGACY_KERAS=1`` for the whole process.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError
from edgekit.optimize.backend import StepProgress, TrainingSet
from edgekit.optimize.keras_rebuild import clone_with_weights, unwrap
from edgekit.optimize.steps import PruneStep

#: kernels at least this sparse keep their zeros through QAT (tfmot's prune-preserving scheme)
SPARSE_KERNELS = 0.2
# pruning ramps up over this share of the fine-tuning steps; the rest fine-tunes at the final sparsity
_RAMP = 0.7


def prune_weights(model: Any, step: PruneStep, data: TrainingSet, progress: StepProgress, train: Callable) -> Any:
    """tfmot ``prune_low_magnitude`` on every prunable layer (not ``step.exclude``), fine-tuned, wrappers stripped."""
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    from edgekit.optimize.backend import steps_per_epoch

    sparsity = tfmot.sparsity.keras
    refused = [_describe(layer) for layer in model.layers if layer.weights and layer.name not in step.exclude
               and not PruneRegistry.supports(layer) and not isinstance(layer, sparsity.PrunableLayer)]
    if refused:
        raise InvalidOptionError(f"tfmot cannot prune these layers: {', '.join(refused)}",
                                 "name them in prune(exclude=[...]) to leave them unpruned")
    total = steps_per_epoch(data, step.batch_size) * step.epochs
    frequency = max(1, min(100, total // 10))
    if step.schedule == "constant" or total == 0:
        schedule = sparsity.ConstantSparsity(step.sparsity, begin_step=0, frequency=frequency)
    else:
        end = min(total - 1, frequency * max(1, round(_RAMP * total / frequency)))
        schedule = sparsity.PolynomialDecay(0.0, step.sparsity, begin_step=0, end_step=max(end, 0), frequency=frequency)

    def wrap(layer: Any) -> Any:
        fresh = type(layer).from_config(layer.get_config())
        if layer.weights and layer.name not in step.exclude:
            return sparsity.prune_low_magnitude(fresh, pruning_schedule=schedule)
        return fresh

    wrapped = clone_with_weights(model, clone_function=wrap)
    if total == 0:
        _prune_once(wrapped)
        return sparsity.strip_pruning(wrapped)
    progress(0.0, f"pruning to {step.sparsity:.0%} sparsity ({step.schedule} schedule, {total} steps)")
    train(wrapped, data, step.epochs, step.learning_rate, step.batch_size, progress, "pruning",
          callbacks=[sparsity.UpdatePruningStep()])
    return sparsity.strip_pruning(wrapped)


def _prune_once(wrapped: Any) -> None:
    """Without fine-tuning: every wrapper's mask set once from its weights' magnitudes, and applied."""
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    for layer in wrapped.layers:
        if isinstance(layer, PruneLowMagnitude):
            layer.pruning_step.assign(0)
            layer.pruning_obj.conditional_mask_update()
            layer.pruning_obj.weight_mask_op()


def quantize(model: Any, exclude: tuple[str, ...]) -> Any:
    """A fake-quantized (tfmot default 8-bit) copy of ``model``; ``exclude`` and weightless unsupported layers stay float.

    A model whose kernels are already sparse (from pruning) keeps its zeros (prune-preserving QAT).
    """
    import re

    import tensorflow_model_optimization as tfmot

    quant = tfmot.quantization.keras
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() \
        if kernel_sparsity(model) >= SPARSE_KERNELS else None
    floating, refused = set(exclude), []

    def annotate(layer: Any) -> Any:
        fresh = type(layer).from_config(layer.get_config())
        return fresh if layer.name in floating else quant.quantize_annotate_layer(fresh)

    while True:  # tfmot names one unsupported layer per attempt: collect them all
        annotated = clone_with_weights(model, clone_function=annotate)
        try:
            with quant.quantize_scope():
                quantized = quant.quantize_apply(annotated, scheme) if scheme else quant.quantize_apply(annotated)
            break
        except RuntimeError as exc:
            found = re.match(r"Layer (.+?):<class", str(exc))
            if not found or found.group(1) in floating:
                raise
            floating.add(found.group(1))
            layer = model.get_layer(found.group(1))
            if layer.weights:  # a layer without weights may stay float; one with weights must not, unasked
                refused.append(_describe(layer))
    if refused:
        raise InvalidOptionError(f"tfmot cannot quantize these layers: {', '.join(refused)}",
                                 "name them in qat(exclude=[...]) to keep them in float")
    quantized.output_names = list(model.output_names)  # not "quant_<name>": the artifacts keep the model's names
    return quantized


def kernel_sparsity(model: Any) -> float:
    """Fraction of zeros in the model's Conv/Dense kernels (the weights magnitude pruning acts on)."""
    total = zeros = 0
    for layer in model.layers:
        for weight in unwrap(layer).weights:
            if weight.dtype.is_floating and "kernel" in weight.name:
                value = np.asarray(weight)
                total += value.size
                zeros += int(value.size - np.count_nonzero(value))
    return zeros / total if total else 0.0


def _describe(layer: Any) -> str:
    return f"{layer.name} ({type(layer).__name__})"
