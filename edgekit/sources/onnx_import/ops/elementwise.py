"""Element-wise ONNX ops: arithmetic, comparisons, logic, activations, Clip, Cast, Where."""
from __future__ import annotations

from typing import Any

from edgekit.sources.onnx_import._torch import F, torch
from edgekit.sources.onnx_import.fold import scalar
from edgekit.sources.onnx_import.ops._util import cast, torch_dtype
from edgekit.sources.onnx_import.registry import op, refuse


def _div(a: Any, b: Any) -> Any:
    if a.is_floating_point() or b.is_floating_point():
        return torch.div(a, b)
    return torch.div(a, b, rounding_mode="trunc")  # ONNX integer Div truncates like C


def _pow(a: Any, b: Any) -> Any:
    return torch.pow(a, b).to(a.dtype)  # ONNX: the result has the base's type


_BINARY_FUNCTIONS = {"Div": _div, "Pow": _pow}


def _binary(name: str, since: int) -> None:
    @op(name, since=since)
    def handler(b: Any, node: Any, x: Any, y: Any) -> Any:
        fn = _BINARY_FUNCTIONS.get(node.op_type) or getattr(torch, _TORCH_NAMES[node.op_type])
        if node.op_type == "Pow" and not _is_dyn(y) and y.numel() == 1:
            exponent = float(y.reshape(-1)[0])
            if exponent == 2.0:
                return b.call(torch.mul, x, x)
            if exponent == 0.5:
                return b.call(torch.sqrt, x)
            if exponent == 1.0:
                return x
        return b.call(fn, x, y)


def _is_dyn(value: Any) -> bool:
    from edgekit.sources.onnx_import.build import Dyn

    return isinstance(value, Dyn)


_TORCH_NAMES = {"Add": "add", "Sub": "sub", "Mul": "mul", "Equal": "eq", "Greater": "gt", "Less": "lt",
                "GreaterOrEqual": "ge", "LessOrEqual": "le", "And": "logical_and", "Or": "logical_or",
                "Xor": "logical_xor"}
for _name in ("Add", "Sub", "Mul", "Div", "Pow"):
    _binary(_name, 7)
for _name in ("Equal", "Greater", "Less", "And", "Or", "Xor"):
    _binary(_name, 7)
for _name in ("GreaterOrEqual", "LessOrEqual"):
    _binary(_name, 12)

_UNARY = {"Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Erf": "erf", "Neg": "neg", "Abs": "abs",
          "Reciprocal": "reciprocal", "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Floor": "floor",
          "Ceil": "ceil", "Round": "round", "Sin": "sin", "Cos": "cos", "Not": "logical_not", "Sign": "sign"}


def _unary(name: str, fn_name: str) -> None:
    @op(name, since=6 if name not in ("Erf", "Not", "Sin", "Cos", "Sign", "Round") else 1)
    def handler(b: Any, node: Any, x: Any) -> Any:
        return b.call(getattr(torch, fn_name), x)


for _name, _fn in _UNARY.items():
    _unary(_name, _fn)


def _variadic(name: str, fn_name: str) -> None:
    @op(name, since=8)
    def handler(b: Any, node: Any, *xs: Any) -> Any:
        result = xs[0]
        for x in xs[1:]:
            result = b.call(getattr(torch, fn_name), result, x)
        if node.op_type == "Mean":
            result = b.call(torch.div, result, float(len(xs)))
        return result


for _name, _fn in {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}.items():
    _variadic(_name, _fn)


def _leaky_relu(x: Any, alpha: float) -> Any:
    return F.leaky_relu(x, alpha)


@op("LeakyRelu", since=6, attrs=("alpha",))
def leaky_relu(b: Any, node: Any, x: Any) -> Any:
    return b.call(_leaky_relu, x, float(node.attrs.get("alpha", 0.01)))


def _elu(x: Any, alpha: float) -> Any:
    return F.elu(x, alpha)


@op("Elu", since=6, attrs=("alpha",))
def elu(b: Any, node: Any, x: Any) -> Any:
    return b.call(_elu, x, float(node.attrs.get("alpha", 1.0)))


def _prelu(x: Any, slope: Any) -> Any:
    return torch.where(x < 0, x * slope, x)


@op("PRelu", since=7)
def prelu(b: Any, node: Any, x: Any, slope: Any) -> Any:
    return b.call(_prelu, x, slope)


def _hard_sigmoid(x: Any, alpha: float, beta: float) -> Any:
    return torch.clamp(x * alpha + beta, 0.0, 1.0)


@op("HardSigmoid", since=6, attrs=("alpha", "beta"))
def hard_sigmoid(b: Any, node: Any, x: Any) -> Any:
    return b.call(_hard_sigmoid, x, float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5)))


@op("HardSwish", since=14)
def hard_swish(b: Any, node: Any, x: Any) -> Any:
    return b.call(F.hardswish, x)


def _softplus(x: Any) -> Any:
    return F.softplus(x)


@op("Softplus", since=1)
def softplus(b: Any, node: Any, x: Any) -> Any:
    return b.call(_softplus, x)


def _gelu(x: Any, approximate: str) -> Any:
    return F.gelu(x, approximate=approximate)


@op("Gelu", since=20, attrs=("approximate",),
    check=lambda attrs, opset: None if attrs.get("approximate", "none") in ("none", "tanh") else "approximate must be none or tanh")
def gelu(b: Any, node: Any, x: Any) -> Any:
    return b.call(_gelu, x, node.attrs.get("approximate", "none"))


def _clamp(x: Any, low: float | None, high: float | None) -> Any:
    return torch.clamp(x, low, high)


@op("Clip", since=6, attrs=("min", "max"))
def clip(b: Any, node: Any, x: Any, low: Any = None, high: Any = None) -> Any:
    if node.opset < 11:
        lo, hi = node.attrs.get("min", -3.4028234663852886e38), node.attrs.get("max", 3.4028234663852886e38)
    else:
        lo = scalar(node, low, "Clip's min") if low is not None else None
        hi = scalar(node, high, "Clip's max") if high is not None else None
    if lo is None and hi is None:
        return x
    return b.call(_clamp, x, lo, hi)


@op("Cast", since=6, attrs=("to", "saturate", "round_mode"))
def cast_op(b: Any, node: Any, x: Any) -> Any:
    dtype = torch_dtype(node.attrs["to"])
    if dtype is None:
        raise refuse(node, f"casting to ONNX element type {node.attrs['to']} is not supported")
    return b.call(cast, x, dtype)


@op("CastLike", since=15, attrs=("saturate", "round_mode"))
def cast_like(b: Any, node: Any, x: Any, like: Any) -> Any:
    return b.call(cast, x, like.dtype)


@op("Where", since=9)
def where(b: Any, node: Any, condition: Any, x: Any, y: Any) -> Any:
    return b.call(torch.where, condition, x, y)


@op("Identity", since=1)
def identity(b: Any, node: Any, x: Any) -> Any:
    return x


def _keep_mask(x: Any) -> Any:
    return torch.ones_like(x, dtype=torch.bool)


@op("Dropout", since=7, attrs=("ratio", "seed"))
def dropout(b: Any, node: Any, x: Any, ratio: Any = None, training: Any = None) -> tuple[Any, Any]:
    if training is not None and bool(scalar(node, training, "Dropout's training_mode")):
        raise refuse(node, "training_mode is true; only inference (identity) is supported")
    wants_mask = len(node.outputs) > 1 and node.outputs[1]
    return (x, b.call(_keep_mask, x)) if wants_mask else (x,)

