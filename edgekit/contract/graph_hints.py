"""What a PyTorch or ONNX model's own first ops say about its input: a torchvision-style normalization
``(x - mean) / std`` (or ``(x - mean) * (1 / std)``) with per-channel constants applied to an input, read from
the graph the build already holds (the ONNX ``ModelProto``, the torch ``ExportedProgram``); nothing is run.

Such a model takes what the normalization expects, not normalized values: pixels scaled to [0, 1] for means
up to 1, raw pixels in [0, 255] for larger means. The hint gives that range, and the normalization itself as
``model_mean`` / ``model_std`` (what the model does; the app must not apply them again).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.contract.infer import channels_of
from edgekit.specs import TensorSpec

Hint = dict[str, Any]


def source_hints(source: Any) -> dict[str, Hint]:
    """Per input name of a loaded source (``edgekit.sources.base.LoadedSource``), its normalization hint."""
    specs = {spec.name: spec for spec in source.spec.inputs}
    if source.framework == "torch":
        return torch_hints(source.exported_program, specs)
    if source.framework == "onnx":
        return onnx_hints(source.model, specs)
    return {}


def onnx_hints(model: Any, specs: dict[str, TensorSpec]) -> dict[str, Hint]:
    """Inputs of an ONNX graph that feed ``Sub(input, const)`` then ``Div(., const)`` or ``Mul(., const)``."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer if tensor.data_location != 1}  # 1: EXTERNAL
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def constant(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(constants[name]) if name in constants else None

    hints = {}
    for name, spec in specs.items():
        subs = readers.get(name, [])
        if len(subs) != 1 or subs[0].op_type != "Sub" or list(subs[0].input[:1]) != [name]:
            continue
        scales = readers.get(subs[0].output[0], [])
        if len(scales) != 1 or scales[0].op_type not in ("Div", "Mul") or scales[0].input[0] != subs[0].output[0]:
            continue
        mean, scale = constant(subs[0].input[1]), constant(scales[0].input[1])
        nodes = f"ONNX nodes {subs[0].op_type} '{subs[0].name}', {scales[0].op_type} '{scales[0].name}'"
        found = _hint(spec, mean, scale, scales[0].op_type == "Mul", nodes)
        if found is not None:
            hints[name] = found
    return hints


def torch_hints(program: Any, specs: dict[str, TensorSpec]) -> dict[str, Hint]:
    """User inputs of a torch ``ExportedProgram`` that feed ``aten.sub(x, buffer)`` then ``aten.div`` / ``aten.mul``
    by a buffer, parameter or lifted constant."""
    signature = program.graph_signature
    targets = {**signature.inputs_to_buffers, **signature.inputs_to_parameters,
               **signature.inputs_to_lifted_tensor_constants}
    stored = {**program.constants, **program.state_dict}  # non-persistent buffers live in constants
    tensors = {node: stored[target] for node, target in targets.items() if target in stored}
    nodes = {node.name: node for node in program.graph.nodes}
    hints = {}
    for name, spec in zip(signature.user_inputs, specs.values()):
        node = nodes.get(name)
        users = list(node.users) if node is not None else []
        if len(users) != 1 or _aten(users[0]) != "sub" or users[0].args[0] is not node or users[0].kwargs.get("alpha", 1) != 1:
            continue
        sub = users[0]
        scales = list(sub.users)
        if len(scales) != 1 or _aten(scales[0]) not in ("div", "mul") or scales[0].args[0] is not sub:
            continue
        mean, scale = _tensor_arg(sub.args[1], tensors), _tensor_arg(scales[0].args[1], tensors)
        where = f"torch ops {sub.target} '{sub.name}', {scales[0].target} '{scales[0].name}'"
        found = _hint(spec, mean, scale, _aten(scales[0]) == "mul", where)
        if found is not None:
            hints[spec.name] = found
    return hints


def _aten(node: Any) -> str | None:
    """``sub`` for ``aten.sub.Tensor`` / ``aten.sub_.Tensor``; None for other nodes."""
    if getattr(node, "op", None) != "call_function":
        return None
    parts = str(node.target).split(".")
    return parts[1].rstrip("_") if len(parts) >= 2 and parts[0] == "aten" else None


def _tensor_arg(arg: Any, tensors: dict[str, Any]) -> np.ndarray | None:
    if isinstance(arg, (int, float)):
        return np.asarray(float(arg))
    name = getattr(arg, "name", None)
    if name in tensors:
        return tensors[name].detach().cpu().float().numpy()
    return None


def _hint(spec: TensorSpec, mean: np.ndarray | None, scale: np.ndarray | None, multiplies: bool,
          where: str) -> Hint | None:
    """The hint of a normalization with constants ``mean`` and ``scale`` (a divisor, or a factor)."""
    channels = channels_of(spec)
    if channels is None or mean is None or scale is None:
        return None
    means, scales = _per_channel(mean, spec, channels), _per_channel(scale, spec, channels)
    if means is None or scales is None or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        return None
    stds = 1.0 / scales if multiplies else scales
    means, stds = np.broadcast_to(means, (channels,)), np.broadcast_to(stds, (channels,))
    model_mean = tuple(float(f"{v:.6g}") for v in means)  # float32 constants: 6 significant digits are exact
    model_std = tuple(float(f"{v:.6g}") for v in stds)
    raw = max(model_mean) > 1.0
    origin = f"{where}: (x - mean) / std in the model, mean {list(model_mean)}, std {list(model_std)}"
    return {"range": (0.0, 255.0) if raw else (0.0, 1.0), "model_mean": model_mean, "model_std": model_std,
            "origin": origin}


def _per_channel(value: np.ndarray, spec: TensorSpec, channels: int) -> np.ndarray | None:
    """``value``'s entries along the input's channel axis, if it broadcasts along that axis only."""
    value = np.asarray(value, dtype=np.float64)
    if value.size == 1:
        return value.reshape(1)
    if value.ndim > 4 or value.size != channels:
        return None
    shape = (1,) * (4 - value.ndim) + value.shape
    axis = 1 if spec.layout == "NCHW" else 3
    return value.reshape(-1) if shape[axis] == channels else None
