"""The remedies an int8 rescue can try, per format, and which ones a route and a device allow.

A remedy is one change to a route job: a scheme change for the whole model (per-channel weights, int16
activations, percentile/entropy calibration, NNCF's full bias correction or SmoothQuant) or a group of
layers kept in float (one divergence culprit, or a sensitive head: its Sigmoid/Softmax and the layer feeding
it, in one step). Layers already in float are never proposed again.

What each route can apply (the rest are not proposed there):

====================  ===========  ===========  ==============  ===========  ================  ============
route                 per-channel  int16 acts   calibration     float layers bias correction   SmoothQuant
====================  ===========  ===========  ==============  ===========  ================  ============
ONNX (ORT QDQ)        yes          QInt16       percentile      nodes_to_    -                 -
                                   (all layers) (entropy: no)   exclude
OpenVINO (NNCF)       yes          no           MEAN_QUANTILE,  IgnoredScope full / fast       TRANSFORMER
                                                HISTOGRAM       (checked)                      model type
TFLite (Keras)        yes          int16x8      no choice       denylisted   -                 -
                                   (all layers)                 nodes
TFLite (litert-torch) no           no           no choice       no           -                 -
====================  ===========  ===========  ==============  ===========  ================  ============

ONNX Runtime's entropy calibration is not proposed: ``quantize_static`` does not pass a bin count to its
calibrator, which then keeps 128 histogram bins for 128 quantized bins, so the KL search has one candidate
threshold, the full range, and the scales equal min/max's (the same cosine to the last digit on PP-OCRv4 det).

litert-torch's PT2E quantizer (``get_symmetric_quantization_config``) takes only ``is_per_channel``,
``is_dynamic`` and ``is_qat``: symmetric int8 weights, asymmetric int8 activations from a histogram
observer, no per-layer exclusion and no 16-bit activations, so the only remedy it would take is per-channel
weights, which it uses already.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from edgekit.session import RouteJob

_MATMUL = {"MatMul", "Gemm", "FULLY_CONNECTED", "BATCH_MATMUL"}
MIN_SHARE = 0.05  # a layer outside the culprits is worth a float build when it adds this share of the error
_NEXT_CALIBRATION = {"minmax": "percentile", "percentile": "entropy"}


@dataclass(frozen=True)
class Remedy:
    """One change to try; ``layers``: the layers it keeps in float (float remedies only)."""

    kind: str  # per_channel | int16_activations | calibration | bias_correction | smooth_quant | float | head_float
    #          | elementwise_float
    detail: str
    layers: tuple[str, ...] = ()
    scheme: tuple[tuple[str, Any], ...] = ()  # QuantScheme fields it sets

    def apply(self, job: RouteJob) -> RouteJob:
        if self.layers:
            job = replace(job, float_layers=(*job.float_layers, *(n for n in self.layers if n not in job.float_layers)))
        if self.scheme:
            job = replace(job, scheme=job.scheme.model_copy(update=dict(self.scheme)))
        return job


@dataclass(frozen=True)
class Allowed:
    """What the device and the route let the rescue change."""

    float_layers: bool
    int16: bool
    torch_tflite: bool = False  # the litert-torch route: none of the remedies apply


def scheme_remedies(job: RouteJob, allowed: Allowed, op_types: set[str], tried: set[str]) -> list[Remedy]:
    """Whole-model scheme changes not tried yet, cheapest first."""
    if allowed.torch_tflite:
        return []
    scheme, found = job.scheme, []
    if not scheme.per_channel:
        found.append(Remedy("per_channel", "per-channel weight scales", scheme=(("per_channel", True),)))
    method = _NEXT_CALIBRATION.get(scheme.calibration_method) if job.format in ("onnx", "openvino") else None
    if method is not None and not (job.format == "onnx" and method == "entropy"):
        found.append(Remedy("calibration", f"{method} calibration", scheme=(("calibration_method", method),)))
    if job.format == "openvino":
        if scheme.bias_correction != "full":
            found.append(Remedy("bias_correction", "NNCF full bias correction", scheme=(("bias_correction", "full"),)))
        if not scheme.smooth_quant and op_types & _MATMUL:
            found.append(Remedy("smooth_quant", "NNCF SmoothQuant (transformer model type)", scheme=(("smooth_quant", True),)))
    int16_ok = allowed.int16 and job.format in ("onnx", "tflite") and not (job.format == "tflite" and job.float_layers)
    if int16_ok and scheme.activations == "int8" and scheme.io_dtype != "uint8":
        found.append(Remedy("int16_activations", "int16 activations, int8 weights", scheme=(("activations", "int16"),)))
    return [r for r in found if r.detail not in tried]


def floats_allowed(job: RouteJob, allowed: Allowed) -> bool:
    """Whether layers may be kept in float here (not on an integer-only device, litert-torch, or TFLite int16x8)."""
    int16x8 = job.format == "tflite" and job.scheme.activations == "int16"
    return allowed.float_layers and not allowed.torch_tflite and not int16x8


def float_remedies(job: RouteJob, report: Any, allowed: Allowed) -> list[Remedy]:
    """Groups of layers to keep in float, most harmful first: the trace's culprits (a sensitive head as one
    group), then the other layers adding at least ``MIN_SHARE`` of the error, by added error. Layers already in
    float are left out; so is a group left empty."""
    if not floats_allowed(job, allowed):
        return []
    kept = set(job.float_layers)
    found: list[Remedy] = []
    seen: set[str] = set(kept)
    for culprit in report.culprits:
        new = tuple(n for n in culprit.keep_float if n not in seen)
        if not new:
            continue
        head = any(reason.startswith("sensitive final layer") for reason in culprit.reasons)
        found.append(Remedy("head_float" if head else "float", f"{culprit.name} ({culprit.reasons[0]})", layers=new))
        seen.update(new)
    total = sum(layer.added_error for layer in report.layers)
    for layer in sorted(report.layers, key=lambda lay: lay.added_error, reverse=True):
        if layer.added_error < max(1e-6, MIN_SHARE * total) or layer.name in seen:
            continue
        found.append(Remedy("float", f"{layer.name} (added error {layer.added_error:.3g})", layers=(layer.name,)))
        seen.add(layer.name)
    return found


#: ops whose int8 rounding adds error without saving weighted compute (activation arithmetic, e.g. HardSwish
#: decomposed into Add/Clip/Div/Mul, learnable affine blocks)
_ELEMENTWISE = {"Add", "Mul", "Sub", "Div", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Relu", "LeakyRelu",
                "PRelu", "BatchNormalization", "Pow", "Sqrt", "Exp", "Softmax"}


def elementwise_remedy(job: RouteJob, report: Any, allowed: Allowed, tried: set[str]) -> Remedy | None:
    """The elementwise ops in float as one group: every convolution and matrix product keeps int8 weights and
    inputs (the int8 share of compute is unchanged), the activation arithmetic between them is not re-rounded.
    ONNX only, where the trace's layer names are the quantizer's node names."""
    if not allowed.float_layers or job.format != "onnx" or any(d.startswith("elementwise ops") for d in tried):
        return None
    kept = set(job.float_layers)
    names = tuple(layer.name for layer in report.layers if layer.op_type in _ELEMENTWISE and layer.name not in kept)
    if len(names) < 2:
        return None
    return Remedy("elementwise_float", f"elementwise ops in float ({len(names)} layers; weighted layers stay int8)",
                  layers=names)
