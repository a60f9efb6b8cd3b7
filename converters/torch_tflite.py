"""PyTorch -> TFLite through litert-torch (the optional ``edgekit[litert-torch]`` extra).

- fp32: ``litert_torch.convert(module, sample_kwargs=...)``.
- fp16: the fp32 model with float16 weights (``ai_edge_quantizer`` float casting, float32 compute).
- dynamic: litert-torch's PT2E quantizer in dynamic mode (int8 weights, activations quantized at run time).
- int8: litert-torch's PT2E quantizer in static mode, calibrated on ``request.calibration``. litert-torch
  folds the input/output quantize ops into the model, so the artifact has int8 input and output tensors
  (their scale and zero point are reported); it has symmetric int8 weights and asymmetric int8
  activations ranged by a histogram observer only.

The model is wrapped so the TFLite signature keeps the source's input and output names. litert-torch
converts static shapes: dynamic dimensions take ``request.static_shapes`` or the example inputs' sizes.
A quantization-aware trained source is refused: litert-torch cannot lower its fake-quant operations.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path
from typing import Any

import numpy as np
from edgekit.converters._qat import exports_qat

from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest
from edgekit.specs import TensorSpec

_INSTALL_HINT = "pip install 'edgekit[litert-torch]'"


def convert(request: RouteRequest) -> RouteOutput:
    """Convert ``request.source`` to ``<stem>.tflite`` at ``request.precision``."""
    require_litert("torch")
    if exports_qat(request):
        raise ConversionError(
            "litert-torch cannot carry the ranges of a quantization-aware trained (NNCF) model: it has no lowering "
            "for fake-quantization operations, and its own int8 quantizer would re-calibrate them",
            "build the QAT model for onnx or openvino (they keep its trained ranges), or leave out the qat step "
            "to let this route calibrate int8 itself",
        )
    check_scheme(request)
    source = request.source
    request.progress(0.05, "capturing the model with torch.export")
    program = source.exported_program
    kwargs = dict(zip(source.input_names, source.args_for(request.static_shapes), strict=True))
    notes = []
    if any(spec.is_dynamic for spec in source.spec.inputs):
        shapes = ", ".join(f"{name}{tuple(value.shape)}" for name, value in kwargs.items())
        notes.append(f"litert-torch converts static shapes: inputs fixed to {shapes}")
    return litert_convert(program.module(), source.input_names, source.output_names, kwargs, request, notes)


def require_litert(framework: str) -> None:
    """A clear error when the optional litert-torch package is missing."""
    if importlib.util.find_spec("litert_torch") is None:
        raise ConversionError(f"the {framework}->tflite route needs the optional package litert-torch", _INSTALL_HINT)


def litert_convert(inner: Any, input_names: list[str], output_names: list[str], kwargs: dict[str, Any],
                   request: RouteRequest, notes: list[str]) -> RouteOutput:
    """Convert a ``torch.export``-able module (positional inputs, tuple of outputs) to ``<stem>.tflite``.

    The part the PyTorch and ONNX routes share: named I/O, the NHWC boundary (``request.layout``), fp32 /
    fp16 / dynamic / int8 with ``request.calibration``, and the artifact's signature specs.
    """
    path = request.out_dir / f"{request.stem}.tflite"
    rename = _identifiers([*input_names, *output_names])  # signature names must be Python identifiers
    kwargs = {rename[name]: value for name, value in kwargs.items()}
    input_names, output_map = [rename[n] for n in input_names], {n: rename[n] for n in output_names if rename[n] != n}
    output_names = [rename[n] for n in output_names]
    layouts = {rename.get(spec.name, spec.name): spec.layout for spec in (*request.source.spec.inputs, *request.source.spec.outputs)}
    transposed: dict[str, str] = {}
    if request.layout == "NHWC":
        inner, transposed = _NHWCBoundary.build(inner, kwargs, output_names)
        kwargs = {name: value.permute(0, 2, 3, 1).contiguous() if name in transposed else value for name, value in kwargs.items()}
        layouts.update(transposed)
    boundary = sorted(transposed) if transposed else []
    notes.insert(0, "litert-torch conversion, " + (f"NCHW tensors {', '.join(boundary)} given NHWC at the artifact's "
                                                   "boundary (layout=NHWC)" if boundary else "NCHW source kept NCHW"))
    request.progress(0.2, f"converting with litert-torch ({request.precision})")
    try:
        module = _NamedIO.build(inner, input_names, output_names)
        if request.precision == "fp32":
            _convert(module, kwargs, path)
        elif request.precision == "fp16":
            notes.append(_to_fp16(module, kwargs, path))
        else:
            calibration = [{rename.get(k, k): v.transpose(0, 2, 3, 1) if rename.get(k, k) in transposed else v
                            for k, v in feed.items()} for feed in request.calibration]
            notes.append(_quantized(module, kwargs, path, request, calibration))
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(
            f"litert-torch failed ({request.precision}): {type(exc).__name__}: {first_line(exc)}",
            "the message names the operation litert-torch could not lower; try the onnx or openvino route",
        ) from exc
    inputs, outputs = _artifact_specs(path, layouts)
    return RouteOutput(path=path, notes=notes, inputs=inputs, outputs=outputs, output_map=output_map)


def _identifiers(names: list[str]) -> dict[str, str]:
    """Each tensor name as a distinct Python identifier (``serving_default_input_2:0`` -> ``serving_default_input_2_0``)."""
    import re

    result: dict[str, str] = {}
    for name in names:
        base = re.sub(r"\W", "_", name) or "tensor"
        base = f"t_{base}" if base[0].isdigit() else base
        candidate, index = base, 1
        while candidate in result.values():
            candidate, index = f"{base}_{index}", index + 1
        result[name] = name if name.isidentifier() and name not in result.values() else candidate
    return result


def check_scheme(request: RouteRequest) -> None:
    """Refuse what the int8 scheme check of the build plan does not cover: dynamic-range asymmetric weights, and
    layers kept in float (litert-torch's PT2E quantizer has neither)."""
    unsupported = []
    if request.precision == "dynamic" and not request.scheme.symmetric_weights:
        unsupported.append("asymmetric weights")
    if request.precision == "int8" and request.float_layers:
        unsupported.append("layers kept in float (float_layers)")
    if unsupported:
        raise ConversionError(
            f"litert-torch's int8 quantizer does not support {', '.join(unsupported)}",
            "it quantizes with symmetric int8 weights and asymmetric int8 activations; use a profile with "
            "that scheme, or convert to ONNX/OpenVINO",
        )


class _NamedIO:
    """Builds a module taking the source's inputs by name and returning its outputs in a dict.

    litert-torch names a TFLite signature's inputs after keyword arguments and its outputs after
    the keys of a returned dict, so this keeps the source's tensor names in the artifact.
    """

    @staticmethod
    def build(inner: Any, input_names: list[str], output_names: list[str]) -> Any:
        import torch

        class NamedIO(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, **inputs: Any) -> dict[str, Any]:
                result = self.inner(*(inputs[name] for name in input_names))
                if isinstance(result, dict):
                    flat = list(result.values())
                elif isinstance(result, (tuple, list)):
                    flat = list(result)
                else:
                    flat = [result]
                return dict(zip(output_names, flat, strict=True))

        return NamedIO()  # an exported program's module() refuses train()/eval(); it is in eval form


class _NHWCBoundary:
    """Wraps a module so that its rank-4 inputs and outputs are NHWC (Android's image layout) instead of NCHW."""

    @staticmethod
    def build(inner: Any, kwargs: dict[str, Any], output_names: list[str]) -> tuple[Any, dict[str, str]]:
        import torch

        inputs = [name for name, value in kwargs.items() if value.dim() == 4]
        with torch.no_grad():
            results = inner(*kwargs.values())
        flat = list(results.values()) if isinstance(results, dict) else list(results) if isinstance(results, (tuple, list)) else [results]
        outputs = [name for name, value in zip(output_names, flat) if getattr(value, "dim", lambda: 0)() == 4]
        in_positions = [i for i, name in enumerate(kwargs) if name in inputs]
        out_positions = [i for i, name in enumerate(output_names) if name in outputs]

        class NHWC(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args: Any) -> tuple[Any, ...]:
                args = tuple(a.permute(0, 3, 1, 2) if i in in_positions else a for i, a in enumerate(args))
                result = self.inner(*args)
                items = list(result.values()) if isinstance(result, dict) else list(result) if isinstance(result, (tuple, list)) else [result]
                return tuple(r.permute(0, 2, 3, 1) if i in out_positions else r for i, r in enumerate(items))

        return NHWC(), {name: "NHWC" for name in (*inputs, *outputs)}


def _convert(module: Any, kwargs: dict[str, Any], path: Path, quant_config: Any = None) -> None:
    import litert_torch

    with contextlib.redirect_stdout(io.StringIO()):  # litert-torch prints a progress tree
        model = litert_torch.convert(module, sample_kwargs=kwargs, quant_config=quant_config)
        model.export(str(path))


def _to_fp16(module: Any, kwargs: dict[str, Any], path: Path) -> str:
    from ai_edge_quantizer import qtyping, quantizer

    fp32_path = path.with_name(path.stem + ".fp32.tflite")
    try:
        _convert(module, kwargs, fp32_path)
        casting = quantizer.Quantizer(str(fp32_path))
        casting.update_quantization_recipe(
            regex=".*",
            operation_name="*",
            algorithm_key="float_casting",
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                compute_precision=qtyping.ComputePrecision.FLOAT,
                explicit_dequantize=True,
            ),
        )
        with contextlib.redirect_stdout(io.StringIO()):
            casting.quantize().export_model(str(path), overwrite=True)
    finally:
        fp32_path.unlink(missing_ok=True)
    return "TFLite float16 weights, float32 compute and input/output"


def _quantized(module: Any, kwargs: dict[str, Any], path: Path, request: RouteRequest,
               calibration: list[dict[str, np.ndarray]]) -> str:
    """PT2E quantization (static int8 or dynamic-range) then conversion with the quantizer's config."""
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    dynamic = request.precision == "dynamic"
    config = pt2e_quantizer.get_symmetric_quantization_config(
        is_per_channel=request.scheme.per_channel, is_dynamic=dynamic
    )
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(config)
    graph = torch.export.export(module, (), kwargs).module()
    _leave_integer_ops_unquantized(graph)
    if not dynamic:
        _fixed_range_softmax(graph, config)
    prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
    feeds = [kwargs] if dynamic else [_to_torch(feed) for feed in calibration]
    request.progress(0.4, f"calibrating on {len(feeds)} sample(s)")
    with torch.no_grad():
        for feed in feeds:
            prepared(**feed)
    quantized = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    _convert(quantized, kwargs, path, QuantConfig(pt2e_quantizer=quantizer))
    granularity = "per-channel" if request.scheme.per_channel else "per-tensor"
    if dynamic:
        return f"TFLite dynamic-range: int8 {granularity} weights, float activations and input/output"
    note = f"TFLite int8 (litert-torch PT2E, {granularity} weights, histogram-observer activation ranges)"
    recurrent = sorted({str(n.target).split(".")[1] for n in graph.graph.nodes
                        if n.op == "call_function" and str(n.target).startswith("aten.") and _is_recurrent(n)})
    if recurrent:
        note += (f"; recurrent ops ({', '.join(recurrent)}) stay float: litert-torch's PT2E quantizer has no int8 annotation for "
                 "recurrent ops, so their gate weights become float FULLY_CONNECTED ops")
    if request.scheme.io_dtype == "float32":
        note += "; input/output are int8 even though float32 was asked: litert-torch folds them into the model"
    return note


def _is_recurrent(node: Any) -> bool:
    """An ``aten.lstm`` / ``aten.gru`` / ``aten.rnn_tanh`` / ``aten.rnn_relu`` call."""
    return str(node.target).split(".")[1] in {"lstm", "gru", "rnn_tanh", "rnn_relu"}


def _leave_integer_ops_unquantized(graph: Any) -> None:
    """Mark ops computing integer tensors (index and sample-rate arithmetic) as annotated, so the quantizer
    does not put a float observer on them (its histogram observer fails on int64 tensors)."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for node in graph.graph.nodes:
        value = node.meta.get("val")
        if node.op == "call_function" and isinstance(value, torch.Tensor) and not value.dtype.is_floating_point:
            node.meta["quantization_annotation"] = QuantizationAnnotation(_annotated=True)


def _fixed_range_softmax(graph: Any, config: Any) -> None:
    """Give every softmax TFLite's fixed int8 output range (scale 1/256, zero point -128): litert-torch's quantizer
    does so only for ``aten._softmax`` after an annotated producer, and an observed range is refused at run time."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    targets = (torch.ops.aten.softmax.int, torch.ops.aten._softmax.default)
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target in targets and config.fixed_qparams is not None:
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={node.args[0]: config.input_activation}, output_qspec=config.fixed_qparams, _annotated=True,
            )


def _to_torch(feed: dict[str, np.ndarray]) -> dict[str, Any]:
    import torch

    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in feed.items()}


def _artifact_specs(path: Path, layouts: dict[str, str]) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The artifact's signature tensors (names, shapes, dtypes, quantization) with their layouts."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    signature = next(iter(interpreter.get_signature_list()))
    runner = interpreter.get_signature_runner(signature)

    def spec(name: str, detail: dict) -> TensorSpec:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        shape = tuple(None if int(d) < 0 else int(d) for d in detail.get("shape_signature", detail["shape"]))
        return TensorSpec(
            name=name,
            shape=shape,
            dtype=np.dtype(detail["dtype"]).name,
            layout=layouts.get(name, "other"),
            scale=float(scale) if scale else None,
            zero_point=int(zero_point) if scale else None,
        )

    inputs = tuple(spec(name, d) for name, d in runner.get_input_details().items())
    outputs = tuple(spec(name, d) for name, d in runner.get_output_details().items())
    return inputs, outputs

