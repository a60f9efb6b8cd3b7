"""Keras 2 / Keras 3 -> ONNX: tf2onnx on the serving function (named inputs and outputs), then ``finish_onnx``."""
from __future__ import annotations

from edgekit.converters._keras_common import conversion_step, input_signature, tf_function, warm_up
from edgekit.converters._onnx_post import finish_onnx

from edgekit.routes import RouteOutput, RouteRequest

OPSET = 17


def convert(request: RouteRequest) -> RouteOutput:
    """Write ``<stem>.onnx`` at ``request.precision``; input and output names are the source's."""
    import tf2onnx

    request.progress(0.05, "running the model once")
    warm_up(request)
    fp32 = request.out_dir / f"{request.stem}.fp32-intermediate.onnx"
    request.progress(0.15, f"converting with tf2onnx (opset {OPSET})")
    with conversion_step(
        "tf2onnx",
        "the message names the TensorFlow op tf2onnx could not convert; replace that layer or try the tflite route",
    ):
        tf2onnx.convert.from_function(
            tf_function(request), input_signature=input_signature(request), opset=OPSET, output_path=str(fp32)
        )
    request.progress(0.6, f"saving ONNX at {request.precision}")
    output = finish_onnx(fp32, request)
    output.notes.insert(0, f"tf2onnx {tf2onnx.__version__}, opset {OPSET}, NHWC layout kept")
    return output
