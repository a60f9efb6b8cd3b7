"""The ops of a loaded source model, mapped (approximately) to the ops each format will hold.

Keras: one entry per layer (class name); PyTorch: one per aten op of the ExportedProgram; ONNX: one per
node (op type, exact for the ONNX format). The mapping to TFLite / OpenVINO names is what the converters
usually emit, so findings on them are ``certainty='likely'``; the artifact check after conversion is exact.
Runs where the source is loaded (the worker process for model files).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from edgekit.compat.report import OpInfo

# Target ops per kind: (tflite builtin ops, onnx op types, openvino op types). An empty tuple: folded away.
_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "conv": (("CONV_2D",), ("Conv",), ("Convolution",)),
    "depthwise": (("DEPTHWISE_CONV_2D",), ("Conv",), ("GroupConvolution",)),
    "conv_transpose": (("TRANSPOSE_CONV",), ("ConvTranspose",), ("ConvolutionBackpropData",)),
    "dense": (("FULLY_CONNECTED",), ("Gemm", "MatMul"), ("MatMul",)),
    "matmul": (("BATCH_MATMUL",), ("MatMul",), ("MatMul",)),
    "add": (("ADD",), ("Add",), ("Add",)),
    "sub": (("SUB",), ("Sub",), ("Subtract",)),
    "mul": (("MUL",), ("Mul",), ("Multiply",)),
    "div": (("DIV",), ("Div",), ("Divide",)),
    "relu": (("RELU",), ("Relu",), ("Relu",)),
    "relu6": (("RELU6",), ("Clip",), ("Clamp",)),
    "sigmoid": (("LOGISTIC",), ("Sigmoid",), ("Sigmoid",)),
    "tanh": (("TANH",), ("Tanh",), ("Tanh",)),
    "softmax": (("SOFTMAX",), ("Softmax",), ("SoftMax",)),
    "gelu": (("GELU",), ("Gelu",), ("Gelu",)),
    "hard_swish": (("HARD_SWISH",), ("HardSwish",), ("HSwish",)),
    "leaky_relu": (("LEAKY_RELU",), ("LeakyRelu",), ("PRelu",)),
    "prelu": (("PRELU",), ("PRelu",), ("PRelu",)),
    "elu": (("ELU",), ("Elu",), ("Elu",)),
    "exp": (("EXP",), ("Exp",), ("Exp",)),
    "max_pool": (("MAX_POOL_2D",), ("MaxPool",), ("MaxPool",)),
    "avg_pool": (("AVERAGE_POOL_2D",), ("AveragePool",), ("AvgPool",)),
    "global_avg_pool": (("MEAN",), ("GlobalAveragePool", "ReduceMean"), ("ReduceMean",)),
    "global_max_pool": (("REDUCE_MAX",), ("GlobalMaxPool", "ReduceMax"), ("ReduceMax",)),
    "mean": (("MEAN",), ("ReduceMean",), ("ReduceMean",)),
    "reshape": (("RESHAPE",), ("Reshape",), ("Reshape",)),
    "transpose": (("TRANSPOSE",), ("Transpose",), ("Transpose",)),
    "concat": (("CONCATENATION",), ("Concat",), ("Concat",)),
    "pad": (("PAD",), ("Pad",), ("Pad",)),
    "resize_nearest": (("RESIZE_NEAREST_NEIGHBOR",), ("Resize",), ("Interpolate",)),
    "resize_bilinear": (("RESIZE_BILINEAR",), ("Resize",), ("Interpolate",)),
    "batch_norm": ((), (), ()),  # folded into the previous convolution, or a MUL+ADD pair when alone
    "layer_norm": (("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "MUL", "ADD"), ("LayerNormalization",), ("MVN",)),
    "lstm": (("UNIDIRECTIONAL_SEQUENCE_LSTM",), ("LSTM",), ("LSTMSequence",)),
    "gru": (("WHILE",), ("GRU",), ("GRUSequence",)),
    "embedding": (("GATHER",), ("Gather",), ("Gather",)),
    "slice": (("STRIDED_SLICE",), ("Slice",), ("StridedSlice",)),
    "identity": ((), (), ()),
    "erf": (("GELU",), ("Erf",), ("Erf",)),
    "sqrt": (("SQRT",), ("Sqrt",), ("Sqrt",)),
    "argmax": (("ARG_MAX",), ("ArgMax",), ("TopK",)),
    "cumsum": (("CUMSUM",), ("CumSum",), ("CumSum",)),
}

_KERAS: dict[str, str] = {
    "Conv1D": "conv", "Conv2D": "conv", "Conv3D": "conv", "DepthwiseConv2D": "depthwise", "SeparableConv2D": "conv",
    "Conv2DTranspose": "conv_transpose", "Dense": "dense", "EinsumDense": "matmul", "Add": "add", "Subtract": "sub",
    "Multiply": "mul", "ReLU": "relu", "Softmax": "softmax", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu",
    "MaxPooling1D": "max_pool", "MaxPooling2D": "max_pool", "AveragePooling1D": "avg_pool", "AveragePooling2D": "avg_pool",
    "GlobalAveragePooling1D": "global_avg_pool", "GlobalAveragePooling2D": "global_avg_pool",
    "GlobalMaxPooling1D": "global_max_pool", "GlobalMaxPooling2D": "global_max_pool", "Average": "mean",
    "Flatten": "reshape", "Reshape": "reshape", "Permute": "transpose", "Concatenate": "concat",
    "ZeroPadding1D": "pad", "ZeroPadding2D": "pad", "UpSampling2D": "resize_nearest", "Resizing": "resize_bilinear",
    "BatchNormalization": "batch_norm", "LayerNormalization": "layer_norm", "LSTM": "lstm", "GRU": "gru",
    "Embedding": "embedding", "Dropout": "identity", "InputLayer": "identity", "Rescaling": "mul",
    "Cropping2D": "slice", "SpatialDropout2D": "identity", "GaussianNoise": "identity",
}
_KERAS_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
                      "gelu": "gelu", "hard_swish": "hard_swish", "hard_silu": "hard_swish", "elu": "elu",
                      "leaky_relu": "leaky_relu", "exponential": "exp"}
_FUSED_ACTIVATIONS = {"relu", "relu6", "linear", None}  # TFLite fuses these into conv / dense / add

_ATEN: dict[str, str] = {
    "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "convolution": "conv", "conv_transpose2d": "conv_transpose",
    "linear": "dense", "addmm": "dense", "mm": "matmul", "bmm": "matmul", "matmul": "matmul", "add": "add", "sub": "sub",
    "mul": "mul", "div": "div", "relu": "relu", "relu_": "relu", "hardtanh": "relu6", "sigmoid": "sigmoid",
    "tanh": "tanh", "softmax": "softmax", "_softmax": "softmax", "gelu": "gelu", "hardswish": "hard_swish",
    "leaky_relu": "leaky_relu", "prelu": "prelu", "elu": "elu", "exp": "exp", "max_pool2d": "max_pool",
    "max_pool2d_with_indices": "max_pool", "avg_pool2d": "avg_pool", "adaptive_avg_pool2d": "global_avg_pool",
    "mean": "mean", "view": "reshape", "reshape": "reshape", "flatten": "reshape", "_unsafe_view": "reshape",
    "permute": "transpose", "transpose": "transpose", "t": "transpose", "cat": "concat", "pad": "pad",
    "constant_pad_nd": "pad", "upsample_nearest2d": "resize_nearest", "upsample_bilinear2d": "resize_bilinear",
    "batch_norm": "batch_norm", "_native_batch_norm_legit_no_training": "batch_norm", "layer_norm": "layer_norm",
    "lstm": "lstm", "gru": "gru", "embedding": "embedding", "slice": "slice", "dropout": "identity", "clone": "identity",
    "contiguous": "identity", "getitem": "identity", "erf": "erf", "sqrt": "sqrt", "argmax": "argmax", "cumsum": "cumsum",
}

# ONNX op type -> OpenVINO op type where the name differs (the OpenVINO ONNX frontend's usual result).
_ONNX_TO_OPENVINO = {
    "Conv": "Convolution", "ConvTranspose": "ConvolutionBackpropData", "Gemm": "MatMul", "Sub": "Subtract",
    "Mul": "Multiply", "Div": "Divide", "Softmax": "SoftMax", "AveragePool": "AvgPool", "GlobalAveragePool": "ReduceMean",
    "GlobalMaxPool": "ReduceMax", "Clip": "Clamp", "Resize": "Interpolate", "HardSwish": "HSwish", "LeakyRelu": "PRelu",
    "Slice": "StridedSlice", "Flatten": "Reshape", "LayerNormalization": "MVN", "LSTM": "LSTMSequence",
    "GRU": "GRUSequence", "QuantizeLinear": "FakeQuantize", "DequantizeLinear": "FakeQuantize", "Identity": "",
    "Dropout": "", "Constant": "", "BatchNormalization": "BatchNormInference",
}
_FORMATS = ("tflite", "onnx", "openvino")


def source_ops(source: Any) -> list[OpInfo]:
    """Ops of a loaded source (``edgekit.sources.base.LoadedSource``) with their likely ops per format."""
    if source.framework in ("keras2", "keras3"):
        return _keras_ops(source.model)
    if source.framework == "torch":
        return _torch_ops(source.exported_program)
    return _onnx_ops(source.model)


def _targets(kind: str | None, op: str) -> dict[str, tuple[str, ...]]:
    # executorch: which ops XNNPACK takes is known only after partitioning, so the check runs on the .pte
    if kind is None:  # unknown to the table: the op's own name, upper-cased for TFLite, is the best guess
        return {"tflite": (op.upper(),), "onnx": (op,), "openvino": (op,), "executorch": ()}
    return {**dict(zip(_FORMATS, _KINDS[kind], strict=True)), "executorch": ()}


def _elements(shape: Any) -> int:
    dims = [d for d in (shape or ()) if d is not None]
    return math.prod(int(d) for d in dims) if dims else 0


def _dims(shape: Any) -> tuple[int | None, ...] | None:
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        return None


def _keras_ops(model: Any) -> list[OpInfo]:
    ops: list[OpInfo] = []
    for layer in _keras_layers(model):
        cls = type(layer).__name__
        out_shape = _dims(_keras_shape(layer, "output"))
        in_shape = _dims(_keras_shape(layer, "input"))
        kind = _KERAS.get(cls)
        if cls == "Activation":
            kind = _KERAS_ACTIVATIONS.get(_activation_name(layer))
        targets = _targets(kind, cls)
        activation = _activation_name(layer)
        if kind in ("conv", "dense", "depthwise", "conv_transpose") and activation not in _FUSED_ACTIVATIONS:
            extra = _KINDS.get(_KERAS_ACTIVATIONS.get(activation or "", ""), ((activation or "").upper(),) * 3)
            targets = {fmt: (*targets[fmt], *extra[i]) for i, fmt in enumerate(_FORMATS)}
        ops.append(OpInfo(name=layer.name, op=cls, targets=targets,
                          compute=_keras_compute(layer, kind, in_shape, out_shape), output_shape=out_shape))
    return ops


def _keras_layers(model: Any) -> list[Any]:
    layers = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers") and layer.layers:  # a nested model or Sequential
            layers.extend(_keras_layers(layer))
        elif type(layer).__name__ != "InputLayer":
            layers.append(layer)
    return layers


def _keras_shape(layer: Any, which: str) -> Any:
    try:
        tensor = getattr(layer, which)
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(tensor, (list, tuple)):
        tensor = tensor[0] if tensor else None
    shape = getattr(tensor, "shape", None)
    return tuple(getattr(shape, "as_list", lambda: shape)()) if shape is not None else None


def _activation_name(layer: Any) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def _keras_compute(layer: Any, kind: str | None, in_shape: Any, out_shape: Any) -> int:
    out = _elements(out_shape[1:] if out_shape else None)
    kernel = getattr(layer, "kernel_size", None)
    channels_in = in_shape[-1] if in_shape and in_shape[-1] is not None else 1
    if kind == "conv" and kernel:
        return out * math.prod(kernel) * int(channels_in) // max(int(getattr(layer, "groups", 1) or 1), 1)
    if kind == "depthwise" and kernel:
        return out * math.prod(kernel)
    if kind in ("dense", "matmul"):
        return out * int(channels_in)
    return out


def _torch_ops(program: Any) -> list[OpInfo]:
    ops = []
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(node.target)  # e.g. "aten.conv2d.default"
        parts = target.split(".")
        base = parts[1] if len(parts) >= 2 and parts[0] == "aten" else parts[-1]
        kind = _ATEN.get(base)
        value = node.meta.get("val")
        out_shape = _dims(getattr(value, "shape", None)) if value is not None and hasattr(value, "shape") else None
        ops.append(OpInfo(name=node.name, op=target, targets=_targets(kind, base),
                          compute=_torch_compute(node, kind, out_shape), output_shape=out_shape))
    return ops


def _torch_compute(node: Any, kind: str | None, out_shape: Any) -> int:
    out = _elements(out_shape[1:] if out_shape else None)
    if kind in ("conv", "dense", "matmul", "conv_transpose") and len(node.args) > 1:
        weight = getattr(node.args[1], "meta", {}).get("val")
        shape = tuple(getattr(weight, "shape", ()))
        if kind == "conv" and len(shape) >= 3:
            return out * math.prod(int(d) for d in shape[1:])
        if kind in ("dense", "matmul") and shape:
            return out * int(shape[-1] if kind == "dense" else shape[-2])
    return out


# ONNX op type -> kind, for the TFLite ops the onnx->tflite route (importer + litert-torch) usually emits.
_ONNX_KINDS = {
    "Conv": "conv", "ConvTranspose": "conv_transpose", "Gemm": "dense", "MatMul": "matmul", "Add": "add", "Sub": "sub",
    "Mul": "mul", "Div": "div", "Relu": "relu", "Clip": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
    "Gelu": "gelu", "HardSwish": "hard_swish", "LeakyRelu": "leaky_relu", "PRelu": "prelu", "Elu": "elu", "Exp": "exp",
    "MaxPool": "max_pool", "AveragePool": "avg_pool", "GlobalAveragePool": "global_avg_pool",
    "GlobalMaxPool": "global_max_pool", "ReduceMean": "mean", "Reshape": "reshape", "Flatten": "reshape",
    "Squeeze": "reshape", "Unsqueeze": "reshape", "Transpose": "transpose", "Concat": "concat", "Pad": "pad",
    "BatchNormalization": "batch_norm", "LayerNormalization": "layer_norm", "Gather": "embedding", "Slice": "slice",
    "Identity": "identity", "Dropout": "identity", "Erf": "erf", "Sqrt": "sqrt", "ArgMax": "argmax",
    "Shape": "identity", "ConstantOfShape": "identity", "Range": "identity", "Size": "identity",
}


def _onnx_ops(model: Any) -> list[OpInfo]:
    from edgekit.sources.onnx_import import refusals

    refused = {r.node: r.reason + f" ({r.op_type}, opset {r.opset})" for r in refusals(model)}
    ops = onnx_graph_ops(model, _onnx_targets)
    return [op.model_copy(update={"refused": {"tflite": refused[op.name]}}) if op.name in refused else op for op in ops]


def _onnx_targets(op_type: str) -> dict[str, tuple[str, ...]]:
    openvino = _ONNX_TO_OPENVINO.get(op_type, op_type)
    kind = _ONNX_KINDS.get(op_type)
    tflite = _KINDS[kind][0] if kind else (op_type.upper(),)
    return {"onnx": (op_type,), "openvino": (openvino,) if openvino else (), "tflite": tflite, "executorch": ()}


def onnx_graph_ops(model: Any, targets_of: Callable[[str], dict[str, tuple[str, ...]]]) -> list[OpInfo]:
    """Every node of an ONNX graph but Constants, with its output shape and compute estimate."""
    import onnx

    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort; compute falls back to 0 for unknown shapes
        pass
    graph = model.graph
    shapes = {vi.name: onnx_shape(vi) for vi in (*graph.value_info, *graph.input, *graph.output)}
    weights = {t.name: tuple(t.dims) for t in graph.initializer}
    ops = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        out_shape = shapes.get(node.output[0]) if node.output else None
        ops.append(OpInfo(name=node.name or f"{node.op_type}_{index}", op=node.op_type, targets=targets_of(node.op_type),
                          compute=onnx_compute(node.op_type, out_shape, [weights.get(i) or shapes.get(i) for i in node.input]),
                          output_shape=out_shape))
    return ops


def onnx_shape(value_info: Any) -> tuple[int | None, ...] | None:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def onnx_compute(op_type: str, out_shape: Any, input_shapes: list[Any]) -> int:
    """MACs of a Conv/ConvTranspose/Gemm/MatMul from its output and weight shapes; output elements otherwise."""
    out = _elements(out_shape[1:] if out_shape else None)
    weight = input_shapes[1] if len(input_shapes) > 1 and input_shapes[1] else None
    if op_type == "Conv" and weight and len(weight) >= 3:
        return out * _elements(weight[1:])
    if op_type == "ConvTranspose" and weight and len(weight) >= 3:
        first = input_shapes[0]
        return _elements(first[1:] if first else None) * _elements(weight[1:])
    if op_type in ("Gemm", "MatMul") and input_shapes and input_shapes[0]:
        k = input_shapes[0][-1]
        return out * int(k) if k else out
    return out
