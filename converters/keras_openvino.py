"""Keras 2 / Keras 3 -> OpenVINO IR: ``openvino.convert_model`` on the serving function, then ``finish_openvino``.

A quantization-aware trained source's FakeQuant ops become FakeQuantize ops; saving the IR stores the weights
they quantize as int8, so no NNCF pass (and no calibration) is needed.
"""
from __future__ import annotations

from dataclasses import replace

from edgekit.converters._keras_common import tf_function, warm_up
from edgekit.converters._openvino_post import finish_openvino
from edgekit.converters._qat import QAT_NOTE, exports_qat

from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest


def convert(request: RouteRequest) -> RouteOutput:
    """Write ``<stem>.xml`` + ``<stem>.bin`` at ``request.precision``; ports carry the source's names."""
    import openvino

    qat = exports_qat(request)
    request.progress(0.05, "running the model once")
    warm_up(request)
    request.progress(0.15, "converting with openvino.convert_model")
    try:
        model = openvino.convert_model(tf_function(request))
    except Exception as exc:  # OpenVINO raises OpConversionFailure / RuntimeError with a C++ check trace
        raise ConversionError(
            f"openvino.convert_model failed: {_openvino_message(exc)}",
            "the message names the TensorFlow op OpenVINO could not convert; replace that layer or try the onnx route",
        ) from exc
    _name_ports(model.inputs, request.source.input_names, "input")
    _name_ports(model.outputs, request.source.output_names, "output")
    request.progress(0.6, f"saving OpenVINO IR at {request.precision}")
    if qat:  # FakeQuantize ops from the model's ranges; saving stores the weights they quantize as int8
        output = finish_openvino(model, replace(request, precision="fp32"))
        output.notes[:0] = [QAT_NOTE, "OpenVINO FakeQuantize ops with int8 weights, no NNCF"]
    else:
        output = finish_openvino(model, request)
    output.notes.insert(0, "openvino.convert_model on the Keras serving function, NHWC layout kept")
    return output


def _openvino_message(exc: BaseException) -> str:
    """The summary lines ("-- No conversion rule found for operations: X") rather than the C++ check location."""
    summary = [line.strip()[3:] for line in str(exc).splitlines() if line.strip().startswith("-- ")]
    return "; ".join(summary) if summary else first_line(exc)


def _name_ports(ports: list, names: list[str], what: str) -> None:
    """Leave each port with exactly the source name it carries among its tensor names."""
    for port in ports:
        found = [name for name in names if name in port.get_names()]
        if len(found) != 1:
            raise ConversionError(
                f"the OpenVINO model has an {what} named {sorted(port.get_names())}, none of the source's ({', '.join(names)})",
                "report this model to the edgekit maintainers",
            )
        port.get_tensor().set_names({found[0]})
