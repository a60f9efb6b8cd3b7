"""Routes for quantization-aware trained sources: int8 from the model's own fake-quant ranges, nothing else."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgekit.errors import ConversionError
from edgekit.routes import RouteOutput, RouteRequest

#: the note every route adds to an artifact built from a quantization-aware trained model
QAT_NOTE = "int8 ranges from quantization-aware training (the model's trained fake-quant ranges, no calibration)"


def exports_qat(request: RouteRequest) -> bool:
    """Whether this build exports a fake-quantized (QAT) source's own ranges: int8 of a fake-quantized model.

    Any other precision of such a model is refused: its fake-quant ops would be baked into a float artifact.
    """
    if not request.source.fake_quantized:
        return False
    if request.precision != "int8":
        raise ConversionError(
            f"a quantization-aware trained model builds int8 artifacts only ({request.precision} was asked)",
            "ask precision='int8' for the QAT model, or leave out the qat step to build float artifacts",
        )
    if request.float_layers or request.scheme.activations == "int16":
        raise ConversionError(
            "a quantization-aware trained model is exported with its own 8-bit ranges: "
            "layers kept in float or int16 activations cannot be applied afterwards",
            "use qat(exclude=[...]) to keep layers in float during training, or drop the qat step",
        )
    return True


def finish_qdq_onnx(path: Path, request: RouteRequest, int8_weights: int) -> RouteOutput:
    """A QAT model's QDQ ONNX (its weights already stored as int8) finished like an fp32 file: no ORT quantizer."""
    from edgekit.converters._onnx_post import finish_onnx

    output = finish_onnx(path, replace(request, precision="fp32"))
    output.notes[:0] = [QAT_NOTE, f"QDQ ONNX: {int8_weights} weight tensors stored as int8, activations quantized "
                        "by the model's QuantizeLinear/DequantizeLinear pairs (no ONNX Runtime quantizer)"]
    return output
