"""Resize (opsets 10-19) and Upsample: nearest and linear, every coordinate transformation and nearest mode.

Sizes are static, so the source coordinate of every output index is computed here with ONNX's formulas.
When they match what ``F.interpolate`` computes (nearest, nearest-exact, bilinear with or without
align_corners) the op becomes one interpolate call (RESIZE_* in TFLite); otherwise it becomes exact
gathers with constant indices (and constant weights for linear), axis by axis.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgekit.sources.onnx_import._torch import F, torch
from edgekit.sources.onnx_import.fold import floats, ints
from edgekit.sources.onnx_import.ops._util import axis, shape
from edgekit.sources.onnx_import.registry import op, refuse

_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                     "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _check_resize(attrs: dict[str, Any], opset: int) -> str | None:
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        return f"mode {mode!r} is not supported (nearest and linear are)"
    coordinate = attrs.get("coordinate_transformation_mode", "half_pixel")
    if coordinate not in _COORDINATE_MODES:
        return f"coordinate_transformation_mode {coordinate!r} is not supported"
    if attrs.get("nearest_mode", "round_prefer_floor") not in _NEAREST_MODES:
        return f"nearest_mode {attrs['nearest_mode']!r} is not an ONNX value"
    if attrs.get("antialias", 0):
        return "antialias=1 is not supported"
    if attrs.get("keep_aspect_ratio_policy", "stretch") not in ("stretch", "not_larger", "not_smaller"):
        return f"keep_aspect_ratio_policy {attrs['keep_aspect_ratio_policy']!r} is not an ONNX value"
    return None


def _source_coordinates(mode: str, out: int, length: int, scale: float) -> np.ndarray:
    d = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (d + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * length)
        center = length / 2
        return center * (1 - adjustment) + (d + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (d + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "align_corners":
        return d * (length - 1) / (out - 1) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return d / scale
    return (d + 0.5) / scale  # tf_half_pixel_for_nn


def _nearest(x: np.ndarray, mode: str, length: int) -> np.ndarray:
    if mode == "floor":
        index = np.floor(x)
    elif mode == "ceil":
        index = np.ceil(x)
    else:
        frac = x - np.floor(x)
        ties = np.isclose(frac, 0.5)
        index = np.where(ties, np.floor(x) if mode == "round_prefer_floor" else np.ceil(x), np.round(x))
    return np.clip(index, 0, length - 1).astype(np.int64)


def _interpolate(x: Any, size: list[int], mode: str, align_corners: bool | None) -> Any:
    return F.interpolate(x, size=size, mode=mode, align_corners=align_corners)


def _take(x: Any, dim: int, index: Any) -> Any:
    return torch.index_select(x, dim, index)


def _lerp(x: Any, dim: int, low: Any, high: Any, weight: Any) -> Any:
    a = torch.index_select(x, dim, low)
    b = torch.index_select(x, dim, high)
    return a + (b - a) * weight


def _plan(node: Any, x: Any, roi: Any, scales: Any, sizes: Any) -> tuple[list[int], list[float]]:
    """Output length and scale per axis of ``x``."""
    dims = shape(x)
    n = len(dims)
    chosen = [axis(a, n) for a in node.attrs.get("axes", range(n))]
    scale_list = floats(node, scales, "Resize's scales") if scales is not None and scales.numel() else []
    size_list = ints(node, sizes, "Resize's sizes") if sizes is not None and sizes.numel() else []
    outs, factors = list(dims), [1.0] * n
    if scale_list:
        for a, s in zip(chosen, scale_list):
            outs[a], factors[a] = int(math.floor(dims[a] * s)), float(s)
        return outs, factors
    if not size_list:
        raise refuse(node, "neither scales nor sizes is given")
    policy = node.attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        ratios = [size_list[i] / dims[a] for i, a in enumerate(chosen)]
        common = min(ratios) if policy == "not_larger" else max(ratios)
        for a in chosen:
            outs[a], factors[a] = int(math.floor(dims[a] * common + 0.5)), common
        return outs, factors
    for a, size in zip(chosen, size_list):
        outs[a], factors[a] = int(size), size / dims[a]
    return outs, factors


def _resize(b: Any, node: Any, x: Any, outs: list[int], factors: list[float], mode: str, coordinate: str,
            nearest_mode: str) -> Any:
    dims = shape(x)
    resized = [a for a in range(len(dims)) if outs[a] != dims[a] or factors[a] != 1.0]
    if not resized:
        return x
    coords = {a: _source_coordinates(coordinate, outs[a], dims[a], factors[a]) for a in resized}
    spatial = 3 <= len(dims) <= 5 and all(a >= 2 for a in resized)
    if mode == "nearest":
        index = {a: _nearest(coords[a], nearest_mode, dims[a]) for a in resized}
        if spatial:
            for torch_mode, formula in (("nearest", lambda o, length: np.floor(np.arange(o) * (length / o))),
                                        ("nearest-exact", lambda o, length: np.floor((np.arange(o) + 0.5) * (length / o)))):
                if all(np.array_equal(index[a], np.minimum(formula(outs[a], dims[a]), dims[a] - 1)) for a in resized):
                    return b.call(_interpolate, x, list(outs[2:]), torch_mode, None)
        for a in resized:
            x = b.call(_take, x, a, torch.from_numpy(index[a]))
        return x
    if spatial and coordinate in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        exact = coordinate == "align_corners" or all(
            np.allclose(coords[a], (np.arange(outs[a]) + 0.5) * dims[a] / outs[a] - 0.5) and (outs[a] > 1 or coordinate == "half_pixel")
            for a in resized)
        if exact:
            torch_mode = {3: "linear", 4: "bilinear", 5: "trilinear"}[len(dims)]
            return b.call(_interpolate, x, list(outs[2:]), torch_mode, coordinate == "align_corners")
    for a in resized:
        src = np.clip(coords[a], 0, dims[a] - 1)
        low = np.floor(src).astype(np.int64)
        high = np.minimum(low + 1, dims[a] - 1)
        weight = (src - low).astype(np.float32).reshape([-1 if i == a else 1 for i in range(len(dims))])
        x = b.call(_lerp, x, a, torch.from_numpy(low), torch.from_numpy(high), torch.from_numpy(weight).to(x.dtype))
    return x


@op("Resize", since=10, attrs=("antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
                              "extrapolation_value", "keep_aspect_ratio_policy", "mode", "nearest_mode"),
    check=_check_resize)
def resize(b: Any, node: Any, x: Any, roi: Any = None, scales: Any = None, sizes: Any = None) -> Any:
    if node.opset == 10:
        scales, roi = roi, None
        coordinate, nearest_mode = "asymmetric", "floor"
    else:
        coordinate = node.attrs.get("coordinate_transformation_mode", "half_pixel")
        nearest_mode = node.attrs.get("nearest_mode", "round_prefer_floor")
    outs, factors = _plan(node, x, roi, scales, sizes)
    mode = "linear" if node.attrs.get("mode", "nearest") in ("linear", "bilinear") else "nearest"
    return _resize(b, node, x, outs, factors, mode, coordinate, nearest_mode)


@op("Upsample", since=7, until=9, attrs=("mode", "scales"), check=_check_resize)
def upsample(b: Any, node: Any, x: Any, scales: Any = None) -> Any:
    factors = list(node.attrs["scales"]) if node.opset < 9 else floats(node, scales, "Upsample's scales")
    dims = shape(x)
    outs = [int(math.floor(d * s)) for d, s in zip(dims, factors)]
    mode = "linear" if node.attrs.get("mode", "nearest") in ("linear", "bilinear") else "nearest"
    return _resize(b, node, x, outs, [float(f) for f in factors], mode, "asymmetric", "floor")

