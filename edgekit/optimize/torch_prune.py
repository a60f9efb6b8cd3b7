"""Pruning for the PyTorch backend.

- Unstructured: ``torch.nn.utils.prune`` global L1 magnitude over Conv/Linear weights, raised per epoch on
  the step's schedule, fine-tuned, then made permanent (``prune.remove``): a plain module holding zeros.
- Structured: torch-pruning's dependency-graph channel pruning (L2 magnitude of each channel group); the
  channels are removed, so the model is smaller. The layer producing the output keeps its channels.
"""
from __future__ import annotations

import math
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.optimize.backend import StepProgress, TrainingSet
from edgekit.optimize.steps import PruneStep
from edgekit.optimize.torch_train import call, take, train

# the polynomial schedule reaches the final sparsity after this share of the epochs, then fine-tunes there
_RAMP = 0.7


def is_excluded(name: str, exclude: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``exclude`` or inside one."""
    return any(name == e or name.startswith(e + ".") for e in exclude)


def describe(model: Any, names: list[str]) -> str:
    return ", ".join(f"{name} ({type(model.get_submodule(name)).__name__})" for name in names)


def owners_of_parameters(model: Any) -> list[str]:
    """Names of the modules that own parameters themselves (not through children)."""
    return [name for name, module in model.named_modules() if any(True for _ in module.parameters(recurse=False))]


# ---------------------------------------------------------------------------------------------- unstructured


def prune_weights(model: Any, step: PruneStep, data: TrainingSet, progress: StepProgress) -> Any:
    """``model`` (pruned in place: the caller's copy) with ``step.sparsity`` of its Conv/Linear weights zeroed."""
    import torch
    from torch.nn.utils import prune

    if step.epochs < 1:
        raise InvalidOptionError("unstructured pruning needs at least one epoch (the sparsity rises while training)",
                                 "give prune(epochs=1) or more, or structured=True to remove channels")
    targets = _unstructured_targets(model, step.exclude)
    total = sum(module.weight.numel() for _, module in targets)
    ramp = max(1, math.ceil(_RAMP * step.epochs))

    def raise_sparsity(epoch: int) -> None:
        fraction = 1.0 if step.schedule == "constant" else min(1.0, (epoch + 1) / ramp)
        target = step.sparsity * (1.0 - (1.0 - fraction) ** 3)
        zeros = sum(int((module.weight == 0).sum()) for _, module in targets)
        # the amount applies to the weights still unpruned (torch's PruningContainer), hence a count
        more = round(target * total) - zeros
        if more > 0:
            prune.global_unstructured([(m, "weight") for _, m in targets], pruning_method=prune.L1Unstructured, amount=more)
            progress(epoch / step.epochs, f"pruning: {target:.0%} of {total} weights zeroed")

    train(model, data, step.epochs, step.learning_rate, step.batch_size, progress, "pruning",
          before_epoch=raise_sparsity)
    with torch.no_grad():
        for _, module in targets:
            if prune.is_pruned(module):
                prune.remove(module, "weight")
    return model


def _unstructured_targets(model: Any, exclude: tuple[str, ...]) -> list[tuple[str, Any]]:
    """(name, module) of the Conv/Linear modules to prune; other layers with weights are refused unless excluded."""
    import torch.nn as nn

    prunable = (nn.modules.conv._ConvNd, nn.Linear)
    left_alone = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.PReLU)
    targets, refused = [], []
    for name in owners_of_parameters(model):
        module = model.get_submodule(name)
        if is_excluded(name, exclude):
            continue
        if isinstance(module, prunable):
            targets.append((name, module))
        elif not isinstance(module, left_alone):
            refused.append(name)
    if refused:
        raise InvalidOptionError(f"magnitude pruning cannot prune these layers: {describe(model, refused)}",
                                 "name them in prune(exclude=[...]) to leave them unpruned")
    if not targets:
        raise InvalidOptionError("the model has no Conv or Linear layers left to prune",
                                 "prune a model with Conv/Linear layers, or exclude fewer of them")
    return targets


# ---------------------------------------------------------------------------------------------- structured


def prune_channels(model: Any, ratio: float, example: Any, exclude: tuple[str, ...] = ()) -> Any:
    """``model`` (changed in place: the caller's copy) with ``ratio`` of the channels of every prunable group
    removed by torch-pruning; the output layer and ``exclude`` keep theirs."""
    import torch
    import torch_pruning as tp

    _check_structured(model, exclude)
    ignored = [model.get_submodule(n) for n, _ in model.named_modules() if n and is_excluded(n, exclude)]
    head = _output_layer(model, example)
    if head is not None:
        ignored.append(head)
    with torch.no_grad():
        reference = call(model.eval(), example)
    pruner = tp.pruner.MetaPruner(  # it traces the model through autograd: no torch.no_grad() here
        model, example, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=ratio,
        ignored_layers=ignored, forward_fn=lambda m, inputs: call(m, inputs),
    )
    pruner.step()
    with torch.no_grad():
        result = call(model, example)
    if tuple(result.shape) != tuple(reference.shape):
        raise InvalidOptionError(
            f"channel pruning changed the output shape from {tuple(reference.shape)} to {tuple(result.shape)}",
            "name the layers that produce the output in prune(exclude=[...])",
        )
    return model


def _check_structured(model: Any, exclude: tuple[str, ...]) -> None:
    """Refuse modules owning parameters that torch-pruning has no channel pruner for (it would guess their axes)."""
    import torch.nn as nn

    supported = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.PReLU,
                 nn.Linear, nn.Embedding, nn.LSTM, nn.MultiheadAttention)
    refused = [name for name in owners_of_parameters(model)
               if not isinstance(model.get_submodule(name), supported)]
    if refused:
        excluded = [n for n in refused if is_excluded(n, exclude)]
        hint = ("use unstructured pruning (structured=False), or build these layers from standard modules "
                "(Conv, Linear, norms, LSTM, MultiheadAttention)")
        if excluded:
            hint += "; exclude=[...] cannot help: their channels are tied to the layers around them"
        raise InvalidOptionError(f"torch-pruning cannot remove channels from these layers: {describe(model, refused)}", hint)


def _output_layer(model: Any, example: Any) -> Any:
    """The last Conv/Linear module the forward pass calls (the classifier or regression head)."""
    import torch
    import torch.nn as nn

    called: list[Any] = []
    hooks = [m.register_forward_hook(lambda module, args, output: called.append(module))
             for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    try:
        with torch.no_grad():
            call(model, example)
    finally:
        for hook in hooks:
            hook.remove()
    return called[-1] if called else None


def first_sample(x: Any) -> Any:
    """The first training sample as a batch of one (torch)."""
    return take(x, slice(0, 1))
