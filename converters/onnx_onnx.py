"""ONNX -> ONNX: a copy of the source at fp32 (same graph), or converted to fp16 / int8 by ``finish_onnx``."""
from __future__ import annotations

import shutil

from edgekit.converters._onnx_post import finish_onnx

from edgekit.routes import RouteOutput, RouteRequest
from edgekit.sources.onnx import save_copy


def convert(request: RouteRequest) -> RouteOutput:
    """Copy the source into the staging folder (never touching the user's file), then finish it."""
    request.progress(0.05, "copying the source model")
    folder = request.out_dir / f".{request.stem}.source"
    try:
        staged = save_copy(request.source, folder, request.static_shapes)
        request.progress(0.2, f"saving ONNX at {request.precision}")
        output = finish_onnx(staged, request)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if request.static_shapes:
        output.notes.insert(0, "dynamic input dimensions fixed to " + _describe(request.static_shapes))
    return output


def _describe(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{name}={list(shape)}" for name, shape in shapes.items())
