"""ONNX -> OpenVINO IR: ``openvino.convert_model`` on a staged copy of the source, then ``finish_openvino``."""
from __future__ import annotations

import shutil

from edgekit.converters._openvino_post import finish_openvino

from edgekit.causes import converter_error
from edgekit.routes import RouteOutput, RouteRequest
from edgekit.sources.onnx import save_copy


def convert(request: RouteRequest) -> RouteOutput:
    """Convert the (already safety-checked) ONNX source with OpenVINO's ONNX frontend."""
    import openvino

    request.progress(0.05, "copying the source model")
    folder = request.out_dir / f".{request.stem}.source"
    try:
        staged = save_copy(request.source, folder)
        request.progress(0.2, "converting with openvino.convert_model")
        try:
            model = openvino.convert_model(str(staged))
        except Exception as exc:  # OpenVINO raises RuntimeError / OpConversionFailure with C++ traces
            raise converter_error(
                "openvino.convert_model failed", exc,
                "OpenVINO's ONNX frontend cannot convert the operators named above; an If/Loop on a fixed input "
                "folds with --input-value NAME=VALUE and dynamic ranks with --input-shape, otherwise use the ONNX "
                "artifact with ONNX Runtime",
            ) from exc
        notes = ["openvino.convert_model on the ONNX model"]
        fixes = {p.get_any_name(): s for p in model.inputs for n, s in request.static_shapes.items() if n in p.get_names()}
        if fixes:
            model.reshape({name: openvino.PartialShape(list(shape)) for name, shape in fixes.items()})
            notes.append("input shapes fixed to " + ", ".join(f"{n}={list(s)}" for n, s in fixes.items()))
        request.progress(0.6, f"saving OpenVINO IR at {request.precision}")
        output = finish_openvino(model, request)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    output.notes[:0] = notes
    return output

