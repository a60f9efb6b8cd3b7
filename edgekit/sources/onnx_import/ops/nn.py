"""Layers: Conv, ConvTranspose, Gemm, MatMul, normalizations, pooling, Softmax/LogSoftmax, Einsum."""
from __future__ import annotations

import math
from typing import Any

from edgekit.sources.onnx_import._torch import F, torch
from edgekit.sources.onnx_import.build import Dyn
from edgekit.sources.onnx_import.ops._util import axis, rank, reshape, shape
from edgekit.sources.onnx_import.registry import op, refuse

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _check_auto_pad(attrs: dict[str, Any], opset: int) -> str | None:
    return None if attrs.get("auto_pad", "NOTSET") in _AUTO_PADS else f"auto_pad {attrs['auto_pad']!r} is not an ONNX value"


def spatial_pads(node: Any, in_sizes: tuple[int, ...], kernel: list[int], strides: list[int],
                 dilations: list[int]) -> tuple[list[int], list[int]]:
    """(begin, end) padding per spatial axis from ``pads`` or ``auto_pad`` at the static input size."""
    n = len(in_sizes)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return [0] * n, [0] * n
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            begins.append(small if auto == "SAME_UPPER" else total - small)
            ends.append(total - small if auto == "SAME_UPPER" else small)
        return begins, ends
    pads = list(node.attrs.get("pads", [0] * (2 * n)))
    return pads[:n], pads[n:]


def _torch_pad(begins: list[int], ends: list[int]) -> list[int]:
    """ONNX (begin..., end...) per axis as F.pad's (last axis first) list."""
    out: list[int] = []
    for begin, end in zip(reversed(begins), reversed(ends)):
        out += [begin, end]
    return out


def _conv(x: Any, w: Any, bias: Any, stride: list[int], padding: list[int], dilation: list[int], groups: int,
          pad: list[int] | None) -> Any:
    if pad:
        x = F.pad(x, pad)
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.dim()]
    return fn(x, w, bias, stride, padding, dilation, groups)


@op("Conv", since=1, attrs=_CONV_ATTRS, check=_check_auto_pad)
def conv(b: Any, node: Any, x: Any, w: Any, bias: Any = None) -> Any:
    n = rank(x) - 2
    if n not in (1, 2, 3):
        raise refuse(node, f"a {n}-D convolution is not supported (1-D, 2-D and 3-D are)")
    kernel = list(node.attrs.get("kernel_shape", shape(w)[2:]))
    strides = list(node.attrs.get("strides", [1] * n))
    dilations = list(node.attrs.get("dilations", [1] * n))
    begins, ends = spatial_pads(node, shape(x)[2:], kernel, strides, dilations)
    symmetric = begins == ends
    padding = begins if symmetric else [0] * n
    extra = None if symmetric else _torch_pad(begins, ends)
    return b.call(_conv, x, w, bias, strides, padding, dilations, int(node.attrs.get("group", 1)), extra)


def _conv_transpose(x: Any, w: Any, bias: Any, stride: list[int], padding: list[int], output_padding: list[int],
                    groups: int, dilation: list[int], crop: list[tuple[int, int]] | None) -> Any:
    fn = {3: F.conv_transpose1d, 4: F.conv_transpose2d, 5: F.conv_transpose3d}[x.dim()]
    if crop is None:
        return fn(x, w, bias, stride, padding, output_padding, groups, dilation)
    y = fn(x, w, None, stride, 0, 0, groups, dilation)
    for index, (start, stop) in enumerate(crop):
        y = torch.narrow(y, index + 2, start, stop - start)
    return y if bias is None else y + bias.reshape([1, -1] + [1] * (x.dim() - 2))


@op("ConvTranspose", since=1, attrs=(*_CONV_ATTRS, "output_padding", "output_shape"), check=_check_auto_pad)
def conv_transpose(b: Any, node: Any, x: Any, w: Any, bias: Any = None) -> Any:
    n = rank(x) - 2
    if n not in (1, 2, 3):
        raise refuse(node, f"a {n}-D transposed convolution is not supported")
    attrs = node.attrs
    kernel = list(attrs.get("kernel_shape", shape(w)[2:]))
    strides = list(attrs.get("strides", [1] * n))
    dilations = list(attrs.get("dilations", [1] * n))
    out_pad = list(attrs.get("output_padding", [0] * n))
    sizes = shape(x)[2:]
    full = [s * (i - 1) + (k - 1) * d + 1 for i, k, s, d in zip(sizes, kernel, strides, dilations)]
    auto = attrs.get("auto_pad", "NOTSET")
    if "output_shape" in attrs or auto in ("SAME_UPPER", "SAME_LOWER"):
        wanted = list(attrs["output_shape"])[-n:] if "output_shape" in attrs else [i * s for i, s in zip(sizes, strides)]
        totals = [f + p - o for f, p, o in zip(full, out_pad, wanted)]
        upper = auto == "SAME_UPPER"
        begins = [t // 2 if upper else t - t // 2 for t in totals]
        ends = [t - t // 2 if upper else t // 2 for t in totals]
    elif auto == "VALID":
        begins, ends = [0] * n, [0] * n
    else:
        pads = list(attrs.get("pads", [0] * (2 * n)))
        begins, ends = pads[:n], pads[n:]
    groups = int(attrs.get("group", 1))
    if begins == ends and all(p < s or p < d for p, s, d in zip(out_pad, strides, dilations)):
        return b.call(_conv_transpose, x, w, bias, strides, begins, out_pad, groups, dilations, None)
    if any(p > e for p, e in zip(out_pad, ends)) or any(v < 0 for v in (*begins, *ends)):
        raise refuse(node, "asymmetric pads with output_padding larger than the end padding are not supported")
    crop = [(begin, f + p - end) for begin, end, f, p in zip(begins, ends, full, out_pad)]
    return b.call(_conv_transpose, x, w, bias, strides, [0] * n, [0] * n, groups, dilations, crop)


def _batch_norm(x: Any, mean: Any, var: Any, scale: Any, bias: Any, eps: float) -> Any:
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)


@op("BatchNormalization", since=7, attrs=("epsilon", "momentum", "spatial", "training_mode"),
    check=lambda attrs, opset: "training_mode=1 is not supported" if attrs.get("training_mode", 0) else
    ("spatial=0 is not supported" if attrs.get("spatial", 1) == 0 else None))
def batch_norm(b: Any, node: Any, x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Any:
    return b.call(_batch_norm, x, mean, var, scale, bias, float(node.attrs.get("epsilon", 1e-5)))


def _instance_norm(x: Any, scale: Any, bias: Any, eps: float) -> Any:
    return F.instance_norm(x, weight=scale, bias=bias, eps=eps)


@op("InstanceNormalization", since=6, attrs=("epsilon",))
def instance_norm(b: Any, node: Any, x: Any, scale: Any, bias: Any) -> Any:
    return b.call(_instance_norm, x, scale, bias, float(node.attrs.get("epsilon", 1e-5)))


def _layer_norm(x: Any, start: int, scale: Any, bias: Any, eps: float) -> Any:
    normalized = tuple(x.shape[start:])
    weight = scale.expand(normalized) if scale is not None else None
    shift = bias.expand(normalized) if bias is not None else None
    return F.layer_norm(x, normalized, weight, shift, eps)


@op("LayerNormalization", since=17, attrs=("axis", "epsilon", "stash_type"))
def layer_norm(b: Any, node: Any, x: Any, scale: Any, bias: Any = None) -> Any:
    start = axis(int(node.attrs.get("axis", -1)), rank(x))
    return b.call(_layer_norm, x, start, scale, bias, float(node.attrs.get("epsilon", 1e-5)))


def _linear(x: Any, weight: Any, bias: Any) -> Any:
    return F.linear(x, weight, bias)


def _gemm(a: Any, w: Any, c: Any, trans_a: bool, trans_b: bool, alpha: float, beta: float) -> Any:
    a = a.t() if trans_a else a
    w = w.t() if trans_b else w
    y = torch.matmul(a, w)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


@op("Gemm", since=7, attrs=("alpha", "beta", "transA", "transB"))
def gemm(b: Any, node: Any, a: Any, w: Any, c: Any = None) -> Any:
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    trans_a, trans_b = bool(node.attrs.get("transA", 0)), bool(node.attrs.get("transB", 0))
    if not isinstance(w, Dyn) and (c is None or not isinstance(c, Dyn)) and not trans_a:
        weight = (w if trans_b else w.t()) * alpha if alpha != 1.0 else (w if trans_b else w.t())
        bias = None
        if c is not None:
            bias = c * beta if beta != 1.0 else c
            if rank(bias) == 2 and shape(bias)[0] == 1 or rank(bias) == 0:
                bias = bias.reshape(-1)
            if rank(bias) == 1 and shape(bias)[0] == 1:
                bias = bias.expand(shape(weight)[0]).clone()
            if rank(bias) != 1 or shape(bias)[0] != shape(weight)[0]:
                return b.call(torch.add, b.call(_linear, a, weight.contiguous(), None), bias)
        return b.call(_linear, a, weight.contiguous(), bias)
    return b.call(_gemm, a, w, c, trans_a, trans_b, alpha, beta)


@op("MatMul", since=1)
def matmul(b: Any, node: Any, a: Any, w: Any) -> Any:
    if not isinstance(w, Dyn) and rank(w) == 2 and rank(a) >= 2:
        return b.call(_linear, a, w.t().contiguous(), None)
    return b.call(torch.matmul, a, w)


@op("Einsum", since=12, attrs=("equation",))
def einsum(b: Any, node: Any, *operands: Any) -> Any:
    return b.call(torch.einsum, node.attrs["equation"].replace(" ", ""), *operands)


def _softmax_2d(x: Any, start: int, log: bool) -> Any:
    flat = torch.reshape(x, (math.prod(x.shape[:start]), -1))
    result = F.log_softmax(flat, dim=1) if log else F.softmax(flat, dim=1)
    return torch.reshape(result, x.shape)


def _softmax(x: Any, dim: int, log: bool) -> Any:
    return F.log_softmax(x, dim=dim) if log else F.softmax(x, dim=dim)


def _softmax_op(name: str) -> None:
    @op(name, since=1, attrs=("axis",))
    def handler(b: Any, node: Any, x: Any) -> Any:
        log = node.op_type == "LogSoftmax"
        if node.opset >= 13:
            return b.call(_softmax, x, axis(int(node.attrs.get("axis", -1)), rank(x)), log)
        start = axis(int(node.attrs.get("axis", 1)), rank(x))
        if start == rank(x) - 1:
            return b.call(_softmax, x, start, log)
        return b.call(_softmax_2d, x, start, log)


_softmax_op("Softmax")
_softmax_op("LogSoftmax")


_POOL_ATTRS = ("auto_pad", "ceil_mode", "kernel_shape", "pads", "strides")


def _max_pool(x: Any, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int], ceil: bool,
              pad: list[int] | None) -> Any:
    if pad:
        x = F.pad(x, pad, value=float("-inf"))
    fn = {3: F.max_pool1d, 4: F.max_pool2d, 5: F.max_pool3d}[x.dim()]
    return fn(x, kernel, stride, padding, dilation, ceil_mode=ceil)


def _avg_pool(x: Any, kernel: list[int], stride: list[int], padding: list[int], ceil: bool, include_pad: bool,
              pad: list[int] | None) -> Any:
    fn = {3: F.avg_pool1d, 4: F.avg_pool2d, 5: F.avg_pool3d}[x.dim()]
    if not pad:
        return fn(x, kernel, stride, padding, ceil, include_pad)
    summed = fn(F.pad(x, pad), kernel, stride, 0, ceil, True)
    if include_pad:
        return summed
    ones = F.pad(torch.ones_like(x[:1, :1]), pad)
    return summed / fn(ones, kernel, stride, 0, ceil, True)


def _pool_geometry(node: Any, x: Any) -> tuple[list[int], list[int], list[int], list[int], list[int] | None]:
    n = rank(x) - 2
    kernel = list(node.attrs["kernel_shape"])
    strides = list(node.attrs.get("strides", [1] * n))
    dilations = list(node.attrs.get("dilations", [1] * n))
    begins, ends = spatial_pads(node, shape(x)[2:], kernel, strides, dilations)
    if begins == ends and all(p <= k // 2 for p, k in zip(begins, kernel)):
        return kernel, strides, dilations, begins, None
    return kernel, strides, dilations, [0] * n, _torch_pad(begins, ends)


@op("MaxPool", since=1, attrs=(*_POOL_ATTRS, "dilations", "storage_order"),
    check=lambda attrs, opset: _check_auto_pad(attrs, opset) or
    ("storage_order=1 is not supported" if attrs.get("storage_order", 0) else None))
def max_pool(b: Any, node: Any, x: Any) -> Any:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise refuse(node, "the Indices output is not supported")
    kernel, strides, dilations, padding, pad = _pool_geometry(node, x)
    return b.call(_max_pool, x, kernel, strides, padding, dilations, bool(node.attrs.get("ceil_mode", 0)), pad)


@op("AveragePool", since=1, attrs=(*_POOL_ATTRS, "count_include_pad", "dilations"),
    check=lambda attrs, opset: _check_auto_pad(attrs, opset) or
    ("dilations other than 1 are not supported" if any(d != 1 for d in attrs.get("dilations", [])) else None))
def average_pool(b: Any, node: Any, x: Any) -> Any:
    kernel, strides, _, padding, pad = _pool_geometry(node, x)
    include = bool(node.attrs.get("count_include_pad", 0))
    return b.call(_avg_pool, x, kernel, strides, padding, bool(node.attrs.get("ceil_mode", 0)), include, pad)


def _global_pool(x: Any, kind: str) -> Any:
    dims = tuple(range(2, x.dim()))
    return torch.mean(x, dim=dims, keepdim=True) if kind == "avg" else torch.amax(x, dim=dims, keepdim=True)


@op("GlobalAveragePool", since=1)
def global_average_pool(b: Any, node: Any, x: Any) -> Any:
    return b.call(_global_pool, x, "avg")


@op("GlobalMaxPool", since=1)
def global_max_pool(b: Any, node: Any, x: Any) -> Any:
    return b.call(_global_pool, x, "max")


@op("Flatten", since=1, attrs=("axis",))
def flatten(b: Any, node: Any, x: Any) -> Any:
    dims = shape(x)
    start = axis(int(node.attrs.get("axis", 1)), len(dims))
    return b.call(reshape, x, (math.prod(dims[:start]), math.prod(dims[start:])))


def _lrn(x: Any, size: int, alpha: float, beta: float, bias: float) -> Any:
    return F.local_response_norm(x, size, alpha, beta, bias)


@op("LRN", since=1, attrs=("alpha", "beta", "bias", "size"),
    check=lambda attrs, opset: None if attrs.get("size", 1) % 2 == 1 else "an even size is not supported")
def lrn(b: Any, node: Any, x: Any) -> Any:
    attrs = node.attrs
    return b.call(_lrn, x, int(attrs["size"]), float(attrs.get("alpha", 1e-4)), float(attrs.get("beta", 0.75)),
                  float(attrs.get("bias", 1.0)))
