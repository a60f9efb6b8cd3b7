"""Shape and data movement: Reshape, Transpose, (Un)Squeeze, Concat, Split, Slice, Gather, Expand, Tile, Pad,
and the shape ops that fold away at static shapes (Shape, Size, ConstantOfShape, Range, Constant)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgekit.sources.onnx_import._torch import F, torch
from edgekit.sources.onnx_import.build import Dyn
from edgekit.sources.onnx_import.fold import constant, ints, scalar
from edgekit.sources.onnx_import.ops._util import axis, rank, reshape, shape
from edgekit.sources.onnx_import.registry import op, refuse


def _reshape_target(node: Any, dims: tuple[int, ...], wanted: list[int], allowzero: bool) -> tuple[int, ...]:
    out = [dims[i] if w == 0 and not allowzero else w for i, w in enumerate(wanted)]
    if out.count(-1) > 1:
        raise refuse(node, "more than one -1 in the target shape")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(dims) // known if known else 0
    if math.prod(out) != math.prod(dims):
        raise refuse(node, f"cannot reshape {list(dims)} to {wanted}")
    return tuple(out)


@op("Reshape", since=5, attrs=("allowzero",))
def reshape_op(b: Any, node: Any, x: Any, target: Any) -> Any:
    dims = _reshape_target(node, shape(x), ints(node, target, "Reshape's shape"), bool(node.attrs.get("allowzero", 0)))
    return x if dims == shape(x) else b.call(reshape, x, dims)


@op("Transpose", since=1, attrs=("perm",))
def transpose(b: Any, node: Any, x: Any) -> Any:
    perm = list(node.attrs.get("perm", range(rank(x) - 1, -1, -1)))
    return x if perm == list(range(rank(x))) else b.call(torch.permute, x, perm)


def _axes(node: Any, given: Any, name: str) -> list[int] | None:
    if node.opset >= 13:
        return ints(node, given, f"{node.op_type}'s axes") if given is not None else None
    return list(node.attrs["axes"]) if "axes" in node.attrs else None


@op("Squeeze", since=1, attrs=("axes",))
def squeeze(b: Any, node: Any, x: Any, axes: Any = None) -> Any:
    dims = shape(x)
    chosen = _axes(node, axes, "Squeeze")
    drop = {axis(a, len(dims)) for a in chosen} if chosen is not None else {i for i, d in enumerate(dims) if d == 1}
    if any(dims[i] != 1 for i in drop):
        raise refuse(node, f"cannot squeeze axes {sorted(drop)} of shape {list(dims)}")
    return b.call(reshape, x, tuple(d for i, d in enumerate(dims) if i not in drop))


@op("Unsqueeze", since=1, attrs=("axes",))
def unsqueeze(b: Any, node: Any, x: Any, axes: Any = None) -> Any:
    dims = list(shape(x))
    chosen = _axes(node, axes, "Unsqueeze")
    if chosen is None:
        raise refuse(node, "Unsqueeze needs axes")
    out_rank = len(dims) + len(chosen)
    for a in sorted(axis(a, out_rank) for a in chosen):
        dims.insert(a, 1)
    return b.call(reshape, x, tuple(dims))


@op("Concat", since=4, attrs=("axis",))
def concat(b: Any, node: Any, *xs: Any) -> Any:
    parts = [x for x in xs if math.prod(shape(x)) > 0 or len(xs) == 1]
    dim = axis(int(node.attrs["axis"]), rank(xs[0]))
    if len(parts) == 1:
        return parts[0]
    return b.call(torch.cat, parts, dim)


@op("Split", since=2, attrs=("axis", "split", "num_outputs"))
def split(b: Any, node: Any, x: Any, sizes: Any = None) -> tuple[Any, ...]:
    dim = axis(int(node.attrs.get("axis", 0)), rank(x))
    length = shape(x)[dim]
    if node.opset >= 13 and sizes is not None:
        parts = ints(node, sizes, "Split's split")
    elif "split" in node.attrs:
        parts = list(node.attrs["split"])
    else:
        count = int(node.attrs.get("num_outputs", len(node.outputs)))
        each = math.ceil(length / count)
        parts = [min(each, length - i * each) for i in range(count)]
    if sum(parts) != length:
        raise refuse(node, f"split sizes {parts} do not add up to the axis length {length}")
    return b.call(torch.split, x, parts, dim)


def _take(x: Any, dim: int, index: list[int]) -> Any:
    return torch.index_select(x, dim, torch.tensor(index, dtype=torch.int64, device=x.device))


def _slice_axis(x: Any, dim: int, start: int, stop: int, step: int) -> Any:
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, stop, step)
    return x[tuple(index)]


@op("Slice", since=1, attrs=("axes", "ends", "starts"))
def slice_op(b: Any, node: Any, x: Any, starts: Any = None, ends: Any = None, axes: Any = None, steps: Any = None) -> Any:
    dims = shape(x)
    if node.opset < 10:
        begin, end = list(node.attrs["starts"]), list(node.attrs["ends"])
        chosen = list(node.attrs.get("axes", range(len(begin))))
        stride = [1] * len(begin)
    else:
        begin, end = ints(node, starts, "Slice's starts"), ints(node, ends, "Slice's ends")
        chosen = ints(node, axes, "Slice's axes") if axes is not None else list(range(len(begin)))
        stride = ints(node, steps, "Slice's steps") if steps is not None else [1] * len(begin)
    result = x
    for a, s, e, st in zip(chosen, begin, end, stride):
        dim = axis(a, len(dims))
        if st == 0:
            raise refuse(node, "a step of 0")
        picked = range(*slice(s, e, st).indices(dims[dim]))
        if st > 0:
            if len(picked) != dims[dim]:
                result = b.call(_slice_axis, result, dim, picked.start, picked.start + len(picked) * st, st)
        else:
            result = b.call(_take, result, dim, list(picked))
    return result


def _gather(x: Any, dim: int, index: Any, index_shape: tuple[int, ...]) -> Any:
    size = x.shape[dim]
    flat = torch.where(index < 0, index + size, index).reshape(-1)
    picked = torch.index_select(x, dim, flat)
    return picked.reshape(tuple(x.shape[:dim]) + index_shape + tuple(x.shape[dim + 1:]))


@op("Gather", since=1, attrs=("axis",))
def gather(b: Any, node: Any, x: Any, index: Any) -> Any:
    dim = axis(int(node.attrs.get("axis", 0)), rank(x))
    if not isinstance(index, Dyn) and index.dim() == 0:
        position = int(index)
        return b.call(torch.select, x, dim, position + shape(x)[dim] if position < 0 else position)
    return b.call(_gather, x, dim, index, shape(index))


@op("GatherElements", since=11, attrs=("axis",))
def gather_elements(b: Any, node: Any, x: Any, index: Any) -> Any:
    dim = axis(int(node.attrs.get("axis", 0)), rank(x))
    return b.call(_gather_elements, x, dim, index)


def _gather_elements(x: Any, dim: int, index: Any) -> Any:
    return torch.gather(x, dim, torch.where(index < 0, index + x.shape[dim], index))


def _broadcast_to(x: Any, dims: tuple[int, ...]) -> Any:
    return torch.broadcast_to(x, dims)


@op("Expand", since=8)
def expand(b: Any, node: Any, x: Any, target: Any) -> Any:
    wanted = ints(node, target, "Expand's shape")
    dims = tuple(int(d) for d in np.broadcast_shapes(shape(x), tuple(wanted)))
    return x if dims == shape(x) else b.call(_broadcast_to, x, dims)


@op("Tile", since=6)
def tile(b: Any, node: Any, x: Any, repeats: Any) -> Any:
    return b.call(torch.tile, x, ints(node, repeats, "Tile's repeats"))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(x: Any, pads: list[int], mode: str, value: float) -> Any:
    """``F.pad``; reflect/replicate/circular pads a batched view ``(1, rest, *padded axes)``: torch reads a tensor
    with one axis more than the padded ones as unbatched, which litert-torch lowers to a transpose of the wrong rank."""
    if mode == "constant":
        return F.pad(x, pads, mode="constant", value=value)
    padded = len(pads) // 2
    lead, tail = tuple(x.shape[:x.dim() - padded]), tuple(x.shape[x.dim() - padded:])
    batched = x.reshape(1, math.prod(lead), *tail)
    out = F.pad(batched, pads, mode=mode)
    return out.reshape(*lead, *out.shape[2:])


@op("Pad", since=2, attrs=("mode", "pads", "value"),
    check=lambda attrs, opset: None if attrs.get("mode", "constant") in _PAD_MODES else f"mode {attrs['mode']!r} is not supported")
def pad(b: Any, node: Any, x: Any, pads: Any = None, value: Any = None, axes: Any = None) -> Any:
    n = rank(x)
    if node.opset < 11:
        amounts, fill = list(node.attrs["pads"]), float(node.attrs.get("value", 0.0))
    else:
        amounts = ints(node, pads, "Pad's pads")
        fill = float(scalar(node, value, "Pad's constant_value")) if value is not None and value.numel() else 0.0
    chosen = [axis(a, n) for a in ints(node, axes, "Pad's axes")] if axes is not None else list(range(n))
    begins, ends = [0] * n, [0] * n
    for i, a in enumerate(chosen):
        begins[a], ends[a] = amounts[i], amounts[i + len(chosen)]
    mode = _PAD_MODES[node.attrs.get("mode", "constant")]
    first = next((i for i in range(n) if begins[i] or ends[i]), n)
    if mode != "constant" and n - first > 3:
        raise refuse(node, f"{node.attrs.get('mode')} padding of more than the last 3 axes is not supported")
    torch_pads: list[int] = []
    for i in range(n - 1, first - 1, -1):
        torch_pads += [begins[i], ends[i]]
    if not torch_pads:
        return x
    return b.call(_pad, x, torch_pads, mode, fill)


@op("Shape", since=1, attrs=("end", "start"))
def shape_op(b: Any, node: Any, x: Any) -> Any:
    dims = list(shape(x))
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(dims))
    return torch.tensor(dims[slice(start, end)], dtype=torch.int64)


@op("Size", since=1)
def size_op(b: Any, node: Any, x: Any) -> Any:
    return torch.tensor(math.prod(shape(x)), dtype=torch.int64)


@op("ConstantOfShape", since=9, attrs=("value",))
def constant_of_shape(b: Any, node: Any, target: Any) -> Any:
    value = node.attrs.get("value", np.zeros(1, dtype=np.float32))
    dims = ints(node, target, "ConstantOfShape's shape")
    return torch.full(dims, value.reshape(-1)[0].item(), dtype=torch.from_numpy(value.copy()).dtype)


@op("Range", since=11)
def range_op(b: Any, node: Any, start: Any, limit: Any, delta: Any) -> Any:
    values = [constant(node, v, f"Range's {what}") for v, what in ((start, "start"), (limit, "limit"), (delta, "delta"))]
    return torch.arange(values[0].item(), values[1].item(), values[2].item(), dtype=values[0].dtype)


@op("Constant", since=1, attrs=("value", "value_float", "value_floats", "value_int", "value_ints"))
def constant_op(b: Any, node: Any) -> Any:
    attrs = node.attrs
    if "value" in attrs:
        return torch.from_numpy(np.array(attrs["value"]).copy())
    if "value_float" in attrs:
        return torch.tensor(attrs["value_float"], dtype=torch.float32)
    if "value_floats" in attrs:
        return torch.tensor(attrs["value_floats"], dtype=torch.float32)
    if "value_int" in attrs:
        return torch.tensor(attrs["value_int"], dtype=torch.int64)
    return torch.tensor(attrs["value_ints"], dtype=torch.int64)


def _topk(x: Any, k: int, dim: int, largest: bool, ordered: bool) -> Any:
    return torch.topk(x, k, dim, largest, ordered)


@op("TopK", since=10, attrs=("axis", "largest", "sorted"))
def topk(b: Any, node: Any, x: Any, k: Any) -> Any:
    dim = axis(int(node.attrs.get("axis", -1)), rank(x))
    count = int(scalar(node, k, "TopK's k"))
    return b.call(_topk, x, count, dim, bool(node.attrs.get("largest", 1)), bool(node.attrs.get("sorted", 1)))


def _arg(x: Any, dim: int, keep: bool, largest: bool) -> Any:
    return torch.argmax(x, dim, keep) if largest else torch.argmin(x, dim, keep)


def _arg_op(name: str) -> None:
    @op(name, since=1, attrs=("axis", "keepdims", "select_last_index"),
        check=lambda attrs, opset: "select_last_index=1 is not supported" if attrs.get("select_last_index", 0) else None)
    def handler(b: Any, node: Any, x: Any) -> Any:
        dim = axis(int(node.attrs.get("axis", 0)), rank(x))
        return b.call(_arg, x, dim, bool(node.attrs.get("keepdims", 1)), node.op_type == "ArgMax")


_arg_op("ArgMax")
_arg_op("ArgMin")


def _depth_to_space(x: Any, block: int, mode: str) -> Any:
    n, c, h, w = x.shape
    if mode == "DCR":
        y = x.reshape(n, block, block, c // block**2, h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // block**2, block, block, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // block**2, h * block, w * block)


@op("DepthToSpace", since=1, attrs=("blocksize", "mode"))
def depth_to_space(b: Any, node: Any, x: Any) -> Any:
    return b.call(_depth_to_space, x, int(node.attrs["blocksize"]), node.attrs.get("mode", "DCR"))
