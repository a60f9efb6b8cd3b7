"""Quantization-aware training for the PyTorch backend with NNCF.

NNCF 3.4's QAT recipe: ``nncf.quantize`` (post-training ranges, FakeQuantize hooks with trainable scales)
then ordinary fine-tuning of the returned module. The trained model is then *frozen* for export: NNCF's
quantizers become ``torch.fake_quantize_per_{tensor,channel}_affine`` calls with the trained scales as
constants. torch.export cannot capture NNCF's own quantizers (nor the torch.ao FakeQuantize modules of
``nncf.strip``): both branch on tensor flags. The frozen calls export as QuantizeLinear/DequantizeLinear
(ONNX) and FakeQuantize (OpenVINO), so the artifacts carry the trained ranges.
"""
from __future__ import annotations

import copy
import logging
import re
from typing import Any

from edgekit.errors import InvalidOptionError, first_line
from edgekit.optimize.backend import StepProgress, TrainingSet
from edgekit.optimize.nncf_torch import use_pure_pytorch_kernels
from edgekit.optimize.steps import QatStep
from edgekit.optimize.torch_prune import describe, is_excluded
from edgekit.optimize.torch_train import sample_count, take, train
from edgekit.quiet import quiet

#: samples NNCF collects its initial ranges on
_INIT_SAMPLES = 300
#: kernels at least this sparse (from pruning) keep their zeros while QAT trains
_SPARSE = 0.2


def quantize_and_train(model: Any, step: QatStep, data: TrainingSet, progress: StepProgress) -> Any:
    """``model`` fake-quantized by NNCF (``step.exclude`` kept float), fine-tuned, and frozen for export."""
    import nncf

    use_pure_pytorch_kernels()
    if step.epochs < 1:
        raise InvalidOptionError("quantization-aware training needs at least one epoch",
                                 "give qat(epochs=1) or more: the fake-quant ranges are learned while training")
    exclude = step.exclude
    if type(model).__name__ == "Sequential" and type(model).__module__.startswith("torch.nn"):
        # NNCF keeps its hooks in a child module, which nn.Sequential.forward would call as a layer
        from edgekit.optimize.torch_fakequant import SequentialRoot

        model, exclude = SequentialRoot(model), tuple(f"body.{name}" for name in exclude)
    example = take(data.x_train, slice(0, 1))
    count = min(_INIT_SAMPLES, sample_count(data.x_train))
    samples = [take(data.x_train, slice(i, i + 1)) for i in range(count)]
    ignored = [f"{re.escape(name.replace('.', '/'))}/.*" for name in exclude]
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    # before quantization: which operation reads each weight (on a copy: tracing leaves NNCF's hook storage
    # in the module as a child, which an nn.Sequential would then call as a layer)
    graph = build_nncf_graph(copy.deepcopy(model).eval(), example)
    parameters = dict(model.named_parameters())
    progress(0.0, f"NNCF: inserting fake quantizers, initial ranges from {count} samples")
    try:
        with quiet("nncf", logging.WARNING):  # NNCF draws progress bars and logs at INFO
            quantized = nncf.quantize(
                model.eval(), nncf.Dataset(samples), subset_size=count, model_type=None,
                ignored_scope=nncf.IgnoredScope(patterns=ignored, validate=False) if ignored else None,
            )
    except Exception as exc:  # nncf raises many types; the model cannot be traced or quantized
        raise InvalidOptionError(f"NNCF cannot quantize the model: {type(exc).__name__}: {first_line(exc, 300)}",
                                 "name the layers it cannot handle in qat(exclude=[...]) to keep them in float") from exc
    _check_weights_quantized(graph, parameters, quantized, exclude)
    keep_zeros = _sparsity_keeper(quantized)
    train(quantized, data, step.epochs, step.learning_rate, step.batch_size, progress, "quantization-aware training",
          after_step=keep_zeros)
    return freeze(quantized, example)


def _check_weights_quantized(graph: Any, parameters: dict[str, Any], quantized: Any, exclude: tuple[str, ...]) -> None:
    """Refuse a model whose weight tensors NNCF left in float without being asked (their layers named).

    ``graph`` is NNCF's graph of the float model (which operation reads each weight, ``parameters`` by name).
    """
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage

    quantized_ports = set()
    for name, _ in get_hook_storage(quantized).named_hooks():
        hook_type, op_name, port = decode_hook_name(name)
        if hook_type == "pre_hooks":
            quantized_ports.add((op_name, port))
    refused = []
    for node in graph.get_all_nodes():
        weight = parameters.get(node.node_name)
        if weight is None or weight.dim() < 2:
            continue
        owner = node.node_name.rsplit(".", 1)[0]
        if is_excluded(owner, exclude) or owner in refused:
            continue
        consumers = [(edge.to_node.node_name, edge.input_port_id) for edge in graph.get_output_edges(node)]
        if not any(consumer in quantized_ports for consumer in consumers):
            refused.append(owner)
    if refused:
        raise InvalidOptionError(f"NNCF cannot quantize the weights of these layers: {describe(quantized, refused)}",
                                 "name them in qat(exclude=[...]) to keep them in float")


def _sparsity_keeper(model: Any) -> Any:
    """A function re-zeroing the weights that are zero now, if the model is sparse (pruned); else None."""
    import torch

    weights = [p for p in model.parameters() if p.dim() >= 2]
    total = sum(p.numel() for p in weights)
    zeros = sum(int((p == 0).sum()) for p in weights)
    if not total or zeros / total < _SPARSE:
        return None
    masks = [(p, p != 0) for p in weights]

    def keep() -> None:
        with torch.no_grad():
            for parameter, mask in masks:
                parameter.mul_(mask)

    return keep


def freeze(model: Any, example: Any) -> Any:
    """``model`` with each NNCF quantizer replaced by a fixed fake-quant call holding its trained range."""
    import nncf
    from nncf.torch.function_hook.wrapper import get_hook_storage

    from edgekit.optimize.torch_fakequant import FixedFakeQuantize

    with quiet("nncf", logging.WARNING):
        stripped = nncf.strip(model, do_copy=False, strip_format=nncf.StripFormat.NATIVE, example_input=example)
    storage = get_hook_storage(stripped)
    for name, module in list(storage.named_hooks()):
        storage.set_submodule(name, FixedFakeQuantize(module))
    return stripped.eval()
