"""Keras 2 / Keras 3 -> TFLite with ``tf.lite.TFLiteConverter``.

Keras 2 (tf_keras) models convert from a concrete function of the serving function; Keras 3 models
are first exported (``keras.export.ExportArchive``) to a SavedModel in the staging folder, since the
converter does not freeze Keras 3 variables held by a concrete function. Both ways give a signature
whose inputs and outputs carry the source's names. A quantization-aware trained source (``fake_quantized``)
converts to int8 from its own FakeQuant ranges, without calibration.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from edgekit.converters._keras_common import (
    conversion_step,
    first_line,
    input_signature,
    serving_function,
    tf_function,
    warm_up,
)
from edgekit.converters._qat import QAT_NOTE, exports_qat

from edgekit.errors import ConversionError
from edgekit.routes import RouteOutput, RouteRequest
from edgekit.specs import TensorSpec

_HINT = (
    "the message names the operation the TFLite converter could not handle; "
    "replace that layer with a TFLite builtin one, or try the onnx or openvino route"
)


def convert(request: RouteRequest) -> RouteOutput:
    """Write ``<stem>.tflite`` at ``request.precision`` (fp32, fp16, dynamic or int8 full-integer)."""
    request.progress(0.05, "running the model once")
    warm_up(request)
    request.progress(0.15, f"converting to TFLite ({request.precision})")
    # Recurrent layers lower to TensorList ops that TFLite only converts with a static batch size.
    batch = 1 if _has_recurrent_layer(request.source.model) and not _has_static_batch(request) else None
    try:
        data, notes = _convert_once(request, batch)
    except ConversionError as exc:
        if batch is not None or "TensorList" not in str(exc.__cause__) or _has_static_batch(request):
            raise
        request.progress(0.5, "retrying with the batch size fixed to 1")
        data, notes = _convert_once(request, batch=1)
        batch = 1
    if batch is not None:
        notes.append("batch size fixed to 1 (recurrent layers need a static batch in TFLite)")
    path = request.out_dir / f"{request.stem}.tflite"
    path.write_bytes(data)
    request.progress(0.9, "reading back the TFLite signature")
    inputs, outputs = artifact_specs(path, request)
    stateful = _stateful_ops(path)
    if stateful:
        notes.append(
            f"stateful: {', '.join(stateful)} keep their state in variable tensors between invocations; "
            "call Interpreter.reset_all_variables() between independent inputs"
        )
    return RouteOutput(path=path, notes=notes, inputs=inputs, outputs=outputs)


def _convert_once(request: RouteRequest, batch: int | None) -> tuple[bytes, list[str]]:
    import tensorflow as tf

    staging = Path(tempfile.mkdtemp(prefix=f"{request.stem}.savedmodel.", dir=request.out_dir))
    try:
        with conversion_step("tracing the Keras model for TFLite", _HINT):
            converter = _converter(request, staging, batch, tf)
        notes = _configure(converter, request, tf)
        try:
            if request.precision == "int8" and request.float_layers:
                return _quantize_keeping_float(converter, request), [*notes, f"kept in float: {', '.join(request.float_layers)}"]
            return converter.convert(), notes
        except Exception as exc:
            raise ConversionError(f"the TFLite converter failed: {_converter_message(exc)}", _HINT) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _quantize_keeping_float(converter: Any, request: RouteRequest) -> bytes:
    """Calibrate, then quantize with ``request.float_layers`` (output tensor names) left in float, as the
    TFLite quantization debugger does with ``QuantizationDebugOptions(denylisted_nodes=...)``."""
    from tensorflow.lite.python import convert as lite_convert

    if request.scheme.io_dtype != "float32" or request.scheme.activations == "int16":
        raise ConversionError("TFLite layers can be kept in float only with float32 input/output and int8 activations",
                              "use quantization io_dtype=float32 and activations=int8 with float_layers")
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    _check_tensor_names(calibrated, request.float_layers, float_only=False)
    quantized = lite_convert.mlir_quantize(
        calibrated, disable_per_channel=converter._experimental_disable_per_channel, fully_quantize=False,
        denylisted_nodes=list(request.float_layers),
    )
    _check_tensor_names(quantized, request.float_layers, float_only=True)
    return quantized


def _check_tensor_names(model: bytes, names: tuple[str, ...], float_only: bool) -> None:
    """Every name is a tensor of ``model`` (the converter ignores unknown names), and with ``float_only`` a float one."""
    from edgekit.formats.tflite.litert import interpreter_class

    details = {d["name"]: d for d in interpreter_class()(model_content=model).get_tensor_details()}
    unknown = [name for name in names if name not in details]
    if unknown:
        raise ConversionError(f"cannot keep {', '.join(unknown)} in float: no tensor of the TFLite model has that name",
                              "name the layers as edgekit debug lists them for the int8 TFLite artifact")
    quantized = [name for name in names if float_only and details[name]["dtype"].__name__ not in ("float32", "float16")]
    if quantized:
        raise ConversionError(f"the TFLite quantizer kept {', '.join(quantized)} in int8 although it was to stay in float",
                              "report the model: the denylist did not apply")


def _has_recurrent_layer(model: Any) -> bool:
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if any(cls.__name__ == "RNN" for cls in type(layer).__mro__):
            return True
        stack.extend(getattr(layer, "layers", []))
        stack.extend(getattr(layer, name) for name in ("layer", "forward_layer", "backward_layer") if hasattr(layer, name))
    return False


def _has_static_batch(request: RouteRequest) -> bool:
    return all(s.shape and s.shape[0] is not None for s in request.source.spec.inputs)


def _converter_message(exc: BaseException) -> str:
    """The first converter error without its MLIR location noise, e.g. "'tf.Foo' op is neither a custom op ..."."""
    for line in str(exc).splitlines():
        found = re.search(r"error: (?:loc\(.*\)\): )?(.*)", line)
        if found:
            return found.group(1).strip()
    return first_line(exc)


def _converter(request: RouteRequest, staging: Path, batch: int | None, tf: Any) -> Any:
    if request.source.framework == "keras2":
        function = tf_function(request, batch)
        return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], request.source.model)
    import keras

    archive = keras.export.ExportArchive()
    archive.track(request.source.model)
    archive.add_endpoint("serve", serving_function(request), input_signature=input_signature(request, batch))
    archive.write_out(str(staging), verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(str(staging), signature_keys=["serve"])


def _configure(converter: Any, request: RouteRequest, tf: Any) -> list[str]:
    """Set the converter up for the precision; return the notes worth recording."""
    precision, scheme = request.precision, request.scheme
    if exports_qat(request):
        return _configure_qat(converter, request, tf)
    if precision == "fp32":
        return ["TFLite float32"]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
        return ["TFLite float16 weights (float32 compute on CPU)"]
    if precision == "dynamic":
        return ["TFLite dynamic-range: int8 weights, float activations"]
    names = [s.name for s in request.source.spec.inputs]
    dtypes = {s.name: s.dtype for s in request.source.spec.inputs}
    feeds = request.calibration
    converter.representative_dataset = lambda: ([np.asarray(f[n], dtype=dtypes[n]) for n in names] for f in feeds)
    int16 = scheme.activations == "int16"
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if int16 else tf.lite.OpsSet.TFLITE_BUILTINS_INT8
    ]
    notes = [f"TFLite full-integer, int8 weights, {scheme.activations} activations, {len(feeds)} calibration samples"]
    notes.append(_io_dtype(converter, scheme.io_dtype, tf.int16 if int16 else tf.int8, tf))
    if not scheme.per_channel:
        converter._experimental_disable_per_channel = True
    notes.append("per-channel weights" if scheme.per_channel else "per-tensor weights")
    return notes


def _configure_qat(converter: Any, request: RouteRequest, tf: Any) -> list[str]:
    """int8 weights and activations from the model's fake-quant ops (the converter folds them; no calibration)."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    io = _io_dtype(converter, request.scheme.io_dtype, tf.int8, tf)
    return [QAT_NOTE, "TFLite int8 weights and activations from the FakeQuant ops", io]


def _io_dtype(converter: Any, io_dtype: str, signed: Any, tf: Any) -> str:
    """Set the artifact's input/output type (float32, or the quantized type); return the note saying so."""
    if io_dtype == "float32":
        return "float32 input/output"
    io = {"int8": signed, "uint8": tf.uint8}[io_dtype]
    converter.inference_input_type = io
    converter.inference_output_type = io
    return f"{io.name} input/output (quantize inputs with the artifact's scale and zero point)"


def _stateful_ops(path: Path) -> list[str]:
    """Fused recurrent kernels (from tf_keras LSTM/GRU/RNN layers) that carry state across invocations."""
    from ai_edge_litert.interpreter import Interpreter

    ops = {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}
    return sorted(op for op in ops if op.endswith(("SEQUENCE_LSTM", "SEQUENCE_RNN")))


def artifact_specs(path: Path, request: RouteRequest) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The artifact's I/O specs from its signature, named and ordered as the source's."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    signature = next(iter(interpreter._get_full_signature_list().values()))
    source = request.source.spec
    inputs = _specs(interpreter.get_input_details(), signature["inputs"], source.inputs)
    outputs = _specs(interpreter.get_output_details(), signature["outputs"], source.outputs)
    return inputs, outputs


def _specs(details: list[dict], by_name: dict[str, int], wanted: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
    by_index = {d["index"]: d for d in details}
    specs = []
    for spec in wanted:
        if spec.name not in by_name:
            raise ConversionError(
                f"the TFLite signature has no tensor named {spec.name!r} (it has {', '.join(by_name)})",
                "report this model to the edgekit maintainers",
            )
        detail = by_index[by_name[spec.name]]
        scale, zero_point = detail["quantization"]
        shape = tuple(None if int(d) < 0 else int(d) for d in detail["shape_signature"])
        specs.append(
            TensorSpec(
                name=spec.name, shape=shape, dtype=np.dtype(detail["dtype"]).name, layout=spec.layout,
                scale=float(scale) if scale else None, zero_point=int(zero_point) if scale else None,
            )
        )
    return tuple(specs)
