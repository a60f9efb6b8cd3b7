"""Shared last step of every route to OpenVINO: save an ``openvino.Model`` as IR at the asked precision.

fp32 keeps float32 weights, fp16 compresses them to float16 (the device still picks its own
inference precision), int8 runs NNCF post-training quantization calibrated on ``request.calibration``.
"""
from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.converters._openvino_float import default_float
from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput
from edgekit.sample_progress import SampleProgress

if TYPE_CHECKING:
    from edgekit.options import QuantScheme
    from edgekit.routes import RouteRequest

# scheme.calibration_method -> NNCF activation range estimator (NNCF has no entropy calibration;
# its histogram estimator is the closest analogue).
_RANGE_ESTIMATORS = {"minmax": "MINMAX", "percentile": "MEAN_QUANTILE", "entropy": "HISTOGRAM"}
# Up to this many bytes of weights, NNCF's full bias correction is affordable (seconds) and used:
# its default fast bias correction cost a small digits CNN 2 points of cosine (0.977 vs 0.9997).
_FULL_BIAS_CORRECTION_BYTES = 16 << 20


def finish_openvino(ov_model: Any, request: RouteRequest) -> RouteOutput:
    """Save ``ov_model`` as ``<stem>.xml`` + ``<stem>.bin`` at ``request.precision``."""
    import openvino as ov

    notes: list[str] = []
    if request.precision == "int8":
        ov_model, notes = _quantize_int8(ov_model, request)
    elif request.precision == "fp16":
        notes = ["OpenVINO IR with float16 weights (the device chooses its inference precision)"]
    elif request.precision != "fp32":
        raise ConversionError(
            f"OpenVINO artifacts have no '{request.precision}' precision", "choose fp32, fp16 or int8"
        )
    xml = request.out_dir / f"{request.stem}.xml"
    try:
        ov.save_model(ov_model, str(xml), compress_to_fp16=request.precision == "fp16")
    except Exception as exc:  # openvino raises RuntimeError with a long C++ trace
        raise ConversionError(f"saving the OpenVINO IR failed: {first_line(exc, 300)}", "check free disk space") from exc
    return RouteOutput(path=xml, companions=[xml.with_suffix(".bin")], notes=notes)


def _quantize_int8(ov_model: Any, request: RouteRequest) -> tuple[Any, list[str]]:
    import nncf

    scheme = request.scheme
    matcher = _input_matcher(ov_model, request)
    counter = SampleProgress(request.progress, "NNCF int8 statistics", len(request.calibration), 0.3, 0.55)

    def match(feed: Any) -> Any:
        counter.tick()
        return matcher(feed)

    preset = nncf.QuantizationPreset.PERFORMANCE if scheme.symmetric_activations else nncf.QuantizationPreset.MIXED
    # NNCF's full bias correction refuses models with If operations: those get the fast one
    has_if = any(op.get_type_name() == "If" for op in ov_model.get_ops())
    small = _weight_bytes(ov_model) <= _FULL_BIAS_CORRECTION_BYTES
    wanted = scheme.bias_correction == "full" or (scheme.bias_correction == "auto" and small)
    full_bias_correction = wanted and not has_if
    ignored = ignored_names(ov_model, request.float_layers)
    defaults = [(why, [n for n in names if n not in ignored]) for why, names in default_float(ov_model)]
    defaults = [(why, names) for why, names in defaults if names]
    automatic = [name for _, names in defaults for name in names]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # NNCF draws progress bars
            quantized = nncf.quantize(
                ov_model,
                nncf.Dataset(request.calibration, match),
                preset=preset,
                subset_size=len(request.calibration),
                model_type=nncf.ModelType.TRANSFORMER if scheme.smooth_quant else None,
                fast_bias_correction=not full_bias_correction,
                advanced_parameters=_advanced_parameters(scheme),
                ignored_scope=nncf.IgnoredScope(names=ignored + automatic, validate=True) if ignored or automatic else None,
            )
    except ConversionError:
        raise
    except Exception as exc:  # nncf / openvino raise many exception types
        raise ConversionError(
            f"NNCF int8 quantization failed: {first_line(exc, 300)}",
            "check that the calibration samples match the model inputs, or use fp16",
        ) from exc
    granularity = "per-channel" if scheme.per_channel else "per-tensor"
    weights = "symmetric" if scheme.symmetric_weights else "asymmetric"
    correction = f"{'full' if full_bias_correction else 'fast'} bias correction" + (" (the model has If operations)"
                                                                                   if has_if else "")
    note = (
        f"NNCF int8 ({preset.name} preset, {granularity} {weights} weights, "
        f"{scheme.calibration_method} calibration, {correction}, {len(request.calibration)} calibration samples)"
    )
    if scheme.smooth_quant:
        note += "; SmoothQuant (transformer model type)"
    note += "; " + _weight_range_note(scheme)
    _check_float(quantized, ignored)
    kept = [f"kept in float: {', '.join(request.float_layers)}"] if request.float_layers else []
    kept += [f"kept in float by default, {why}: {', '.join(names)}" for why, names in defaults]
    return quantized, [note, *kept]


_WEIGHTED = {"Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData", "GroupConvolutionBackpropData"}
_BIAS = {"Add", "Multiply", "Convert", "Reshape"}


def ignored_names(ov_model: Any, float_layers: tuple[str, ...]) -> list[str]:
    """NNCF node names for the layers to keep in float: each name is an op of ``ov_model`` (or an ONNX node whose
    convolution OpenVINO split into ``<name>/WithoutBiases`` + a bias ``Add``), with the weighted op behind a
    bias add included, since that op is what NNCF quantizes. A name that matches nothing is an error."""
    ops = {op.get_friendly_name(): op for op in ov_model.get_ops()}
    names: list[str] = []
    unknown = []
    for name in float_layers:
        found = [n for n in (name, f"{name}/WithoutBiases") if n in ops]
        if not found:
            unknown.append(name)
            continue
        for match in found:
            names.append(match)
            op = ops[match]
            while op.get_type_name() in _BIAS and op.get_input_size():
                op = op.input_value(0).get_node()
                if op.get_type_name() in _WEIGHTED:
                    names.append(op.get_friendly_name())
                    break
    if unknown:
        close = sorted(n for n in ops if any(u.split("/")[0] in n for u in unknown))[:5]
        raise ConversionError(
            f"cannot keep {', '.join(unknown)} in float: no layer of the OpenVINO model has that name",
            "name the layers as edgekit debug lists them for the OpenVINO artifact"
            + (f" (similar: {', '.join(close)})" if close else ""),
        )
    return list(dict.fromkeys(names))


def _check_float(quantized: Any, ignored: list[str]) -> None:
    """Every ignored weighted layer really reads float activations and weights (no FakeQuantize in front)."""
    ops = {op.get_friendly_name(): op for op in quantized.get_ops()}
    for name in ignored:
        op = ops.get(name)
        if op is None or op.get_type_name() not in _WEIGHTED:
            continue
        sources = [port.get_source_output().get_node() for port in op.inputs()]
        if any(s.get_type_name() == "FakeQuantize" for s in sources):
            raise ConversionError(f"NNCF quantized {name} although it was to stay in float",
                                  "report the model: the ignored scope did not apply")


def _weight_bytes(ov_model: Any) -> int:
    """Bytes held by the model's floating-point constants."""
    total = 0
    for op in ov_model.get_ops():
        if op.get_type_name() == "Constant" and op.get_output_element_type(0).is_real():
            shape = op.get_output_shape(0)
            total += int(np.prod(list(shape), dtype=np.int64)) * op.get_output_element_type(0).size
    return total


def _advanced_parameters(scheme: QuantScheme) -> Any:
    from nncf.common.quantization.structs import QuantizationScheme
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
        QuantizationParameters,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    weights = QuantizationParameters(
        per_channel=scheme.per_channel,
        mode=QuantizationScheme.SYMMETRIC if scheme.symmetric_weights else QuantizationScheme.ASYMMETRIC,
    )
    return AdvancedQuantizationParameters(
        # NNCF's overflow fix (7-bit weights for CPUs without VNNI) exists for symmetric weights only
        overflow_fix=OverflowFix.ENABLE if scheme.reduced_weights and scheme.symmetric_weights else OverflowFix.DISABLE,
        weights_quantization_params=weights,
        activations_range_estimator_params=getattr(
            RangeEstimatorParametersSet, _RANGE_ESTIMATORS[scheme.calibration_method]
        ),
    )


def _weight_range_note(scheme: QuantScheme) -> str:
    if not scheme.reduced_weights:
        return "8-bit weights"
    if scheme.symmetric_weights:
        return "7-bit weights (NNCF overflow fix: int8 products saturate on x86 CPUs without VNNI)"
    return "8-bit weights: NNCF's 7-bit overflow fix needs symmetric weights, int8 products may saturate on x86 CPUs without VNNI"


def _input_matcher(ov_model: Any, request: RouteRequest):
    """A transform from a feed (keyed by source input names) to ``{port index: array}`` for ``ov_model``.

    Ports are matched by tensor name; when the converted model renamed its inputs, by position.
    """
    ports = list(ov_model.inputs)
    source_names = [spec.name for spec in request.source.spec.inputs]
    keys: list[str] = []
    for index, port in enumerate(ports):
        named = [name for name in port.get_names() if name in source_names]
        if named:
            keys.append(named[0])
        elif len(ports) == len(source_names):
            keys.append(source_names[index])
        else:
            raise ConversionError(
                f"cannot tell which source input feeds OpenVINO input {index} ({', '.join(port.get_names()) or 'unnamed'})",
                f"the source's inputs are {', '.join(source_names)}",
            )
    dtypes = [port.get_element_type().to_dtype() for port in ports]

    def transform(feed: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
        return {i: np.asarray(feed[key]).astype(dtype, copy=False) for i, (key, dtype) in enumerate(zip(keys, dtypes))}

    return transform

