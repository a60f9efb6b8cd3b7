"""Small helpers the handlers share: axes, ONNX element types, shapes of constants and run-time values."""
from __future__ import annotations

from typing import Any

from edgekit.sources.onnx_import._torch import torch


def shape(value: Any) -> tuple[int, ...]:
    """The static shape of a constant tensor or a run-time value."""
    return tuple(int(d) for d in value.shape)


def rank(value: Any) -> int:
    return len(shape(value))


def axis(value: int, size: int) -> int:
    """An ONNX axis (negative counts from the end) as a non-negative index."""
    return value + size if value < 0 else value


_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
                10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}


def torch_dtype(onnx_type: int) -> Any:
    """The torch dtype of an ONNX TensorProto element type, or None when torch has none."""
    name = _ONNX_DTYPES.get(int(onnx_type))
    return getattr(torch, name) if name else None


def cast(x: Any, dtype: Any) -> Any:
    """``x.to(dtype)`` as a function (FX call_function target); float -> int truncates toward zero like ONNX."""
    return x.to(dtype)


def reshape(x: Any, dims: tuple[int, ...]) -> Any:
    return torch.reshape(x, dims)
