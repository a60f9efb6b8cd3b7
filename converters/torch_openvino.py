"""PyTorch -> OpenVINO IR: ``openvino.convert_model`` on the source's ExportedProgram, then ``finish_openvino``.

A quantization-aware trained source (``source.fake_quantized``, int8 only) converts to FakeQuantize operations
with its trained ranges; OpenVINO stores the weights they quantize as int8 when it saves the IR (no NNCF).
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

from edgekit.converters._openvino_post import finish_openvino
from edgekit.converters._qat import QAT_NOTE, exports_qat

from edgekit.causes import converter_error
from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest
from edgekit.specs import TensorSpec


def convert(request: RouteRequest) -> RouteOutput:
    """Convert ``request.source`` to OpenVINO with the source's I/O names, saved at ``request.precision``."""
    import openvino

    qat = exports_qat(request)
    source = request.source
    try:
        model, how = (None, "") if qat else _traced_recurrent(request)  # a QAT model keeps the exported path
        if model is None:
            request.progress(0.05, "capturing the model with torch.export")
            program = source.exported_program  # the ExportedProgram itself: its .module() does not trace in OpenVINO
            request.progress(0.2, "converting with openvino.convert_model")
            model, how = openvino.convert_model(program), "openvino.convert_model on the torch.export program"
    except Exception as exc:
        raise converter_error(
            "openvino.convert_model failed", exc,
            "OpenVINO's PyTorch frontend cannot convert the operations named above; replace them in forward(), "
            "or try the onnx route",
        ) from exc
    _name_ports(model.inputs, source.input_names, "inputs")
    _name_ports(model.outputs, source.output_names, "outputs")
    _set_input_shapes(model, source.spec.inputs, request.static_shapes)
    request.progress(0.6, f"saving OpenVINO IR at {request.precision}")
    if qat:
        output = finish_openvino(model, replace(request, precision="fp32"))
        output.notes[:0] = [QAT_NOTE, "OpenVINO FakeQuantize operations from the model's ranges, int8 weights, no NNCF"]
    else:
        output = finish_openvino(model, request)
    output.notes.insert(0, how)
    return output


_RECURRENT = ("LSTM", "GRU", "RNN")


def _traced_recurrent(request: RouteRequest) -> tuple[Any, str]:
    """A model with recurrent layers converted from the module through OpenVINO's tracing frontend, or (None, "").

    ``torch.export`` decomposes ``nn.LSTM``/``GRU``/``RNN`` into one cell per time step: a 3-layer LSTM over 160
    frames became 11 078 OpenVINO ops (70 s to convert, and NNCF's int8 setup alone ran past 10 minutes), where
    the traced module keeps 3 ``LSTMSequence`` ops (54 ops, 9 s). A module that does not trace falls back to
    the program, and so does one whose trace fixed values read from tensors (``TracerWarning``).
    """
    import openvino
    import torch

    module = request.source.model
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.fx.GraphModule):
        return None, ""
    layers = sorted({type(m).__name__ if isinstance(m, torch.nn.RNNBase) else getattr(m, "original_name", "")
                     for m in module.modules()} & set(_RECURRENT))
    if not layers:
        return None, ""
    request.progress(0.05, f"tracing the module (its {', '.join(layers)} layers stay whole)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            model = openvino.convert_model(module, example_input=request.source.args_for(request.static_shapes))
        except Exception:  # noqa: BLE001 - a module that does not trace: the torch.export program is converted instead
            return None, ""
    if any(issubclass(w.category, torch.jit.TracerWarning) and not _rnn_check(w.filename) for w in caught):
        return None, ""  # the trace fixed a Python value it read from a tensor: it may not hold for other inputs
    return model, (f"openvino.convert_model on the traced module: torch.export would unroll its {', '.join(layers)} "
                   "layers into one cell per time step")


def _rnn_check(filename: str) -> bool:
    """A warning from ``nn.RNNBase``'s own input-size checks (they compare shapes; the trace keeps no value)."""
    return filename.replace("\\", "/").endswith("torch/nn/modules/rnn.py")


def _name_ports(ports: list, names: list[str], what: str) -> None:
    """Give the model's ports the source's tensor names (torch.export renames them)."""
    if len(ports) != len(names):
        raise ConversionError(
            f"the OpenVINO model has {len(ports)} {what} but the source has {len(names)}",
            "report this model to the edgekit maintainers",
        )
    for port, name in zip(ports, names, strict=True):
        port.get_tensor().set_names({name})


def _set_input_shapes(model: Any, specs: tuple[TensorSpec, ...], static_shapes: dict[str, tuple[int, ...]]) -> None:
    """Give each input the source's shape (openvino leaves them all dynamic), or the fixed one asked."""
    import openvino

    shapes = {}
    for spec in specs:
        dims = static_shapes.get(spec.name, spec.shape)
        shapes[spec.name] = openvino.PartialShape([-1 if d is None else int(d) for d in dims])
    try:
        model.reshape(shapes)
    except Exception as exc:
        raise ConversionError(
            f"the OpenVINO model does not take the input shapes {static_shapes or 'of the source'}: {first_line(exc)}",
            "check the static input shapes asked for",
        ) from exc

