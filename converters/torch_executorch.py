"""PyTorch -> ExecuTorch (.pte): ``torch.export`` -> ``to_edge_transform_and_lower`` with the XNNPACK
partitioner -> ``to_executorch()`` (the optional ``edgekit[executorch]`` extra).

- fp32: the exported program lowered as is; what XNNPACK does not take runs in the portable kernels.
- int8: the pt2e flow of ``torchao.quantization.pt2e`` with ExecuTorch's ``XNNPACKQuantizer``
  (``get_symmetric_quantization_config``: symmetric int8 weights, per channel unless the scheme says
  per tensor; asymmetric int8 activations), calibrated on ``request.calibration``. ``float_layers`` are
  refused: executorch 1.4's XNNPACKQuantizer asserts "quantization_config == None is not supported yet"
  on ``set_module_name(name, None)``, so it cannot keep a module in float.
- fp16 is refused by the route table: XNNPACK runs fp16 only on arm64 cores with fp16 arithmetic, and a
  half-precision export changes the program's I/O to float16, which this host could not validate.

The program carries a constant method ``edgekit_io`` with the source's input and output names (the .pte
format has none), and every .pte is loaded in the ExecuTorch runtime and run once before it is returned.
The partition report (which ops XNNPACK took, which run in the portable kernels) goes into the notes.
A program captured from an example with a 0 stride (numpy's ``batch[i][None]`` gives its size-1 axis stride 0;
ExecuTorch refuses it: "0 in strides is not supported") is captured again from densely strided copies.
A PReLU on anything but a 4-D (NCHW) tensor, e.g. after a Linear layer as in MTCNN's O-Net, stays out of
the XNNPACK partition: executorch 1.4's partitioner takes it, then its ``ChannelsLastTaggedReshapePass``
fails the whole lowering ("Attempting to convert non-NHWC compatible node to NHWC"); left out, it is
decomposed (its select runs in the portable kernels) and the rest is still delegated.
An unrolled LSTM/GRU/RNN layer's split and squeeze ops are lowered as XNNPACK slice and view ops
(``converters/_executorch_recurrent.py``): left to the portable kernels, each one cut the XNNPACK
partition at every time step (37 delegates at 10 steps, 67 at 20; resemblyzer's 160 did not lower in 38 minutes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.errors import ConversionError, first_line
from edgekit.routes import RouteOutput, RouteRequest


def convert(request: RouteRequest) -> RouteOutput:
    """Lower ``request.source`` to ``<stem>.pte`` at ``request.precision`` (fp32 or int8)."""
    source = request.source
    if source.fake_quantized:
        raise ConversionError("the torch->executorch route cannot carry a quantization-aware trained (NNCF) model's "
                              "ranges", "build the QAT model for onnx or openvino, or leave out the qat step")
    args = source.args_for(request.static_shapes)
    request.progress(0.05, "capturing the model with torch.export")
    program = source.program_for(request.static_shapes)
    notes = ["torch.export -> to_edge_transform_and_lower (XNNPACK partitioner) -> .pte"]
    return lower_to_pte(program, args, (source.input_names, source.output_names), request, notes)


def lower_to_pte(program: Any, args: tuple[Any, ...], names: tuple[list[str], list[str]], request: RouteRequest,
                 notes: list[str]) -> RouteOutput:
    """Quantize (int8) and lower an exported ``program`` taking ``args``, with (input, output) ``names``, to
    ``<stem>.pte``; load and run it once, and return it with ``notes`` plus the partition report."""
    from edgekit.quiet import quiet

    input_names, output_names = names
    try:
        with quiet():
            program, args = _densely_strided(program, args)
            if request.precision == "int8":
                request.progress(0.15, f"pt2e int8 quantization, {len(request.calibration)} calibration samples")
                program, note = _quantized(program, args, input_names, request)
                notes.append(note)
            request.progress(0.5, "lowering to XNNPACK")
            edge, rewritten = _lower(program, input_names, output_names)
            buffer = edge.to_executorch().buffer
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(
            f"ExecuTorch lowering failed ({request.precision}): {type(exc).__name__}: {first_line(exc)}",
            "the message names the operator that could not be lowered; replace it in forward(), or try the onnx route",
        ) from exc
    if rewritten:
        notes.append(f"recurrent layers: {rewritten} split/squeeze ops of their unrolled steps lowered as XNNPACK "
                     "slice/view ops (same values), so the steps stay in one partition")
    path = request.out_dir / f"{request.stem}.pte"
    _write(path, buffer)
    request.progress(0.9, "loading and running the .pte in the ExecuTorch runtime")
    check_runs(path, args)
    notes.append(partition_note(path))
    return RouteOutput(path=path, notes=notes)


def _densely_strided(program: Any, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """``program`` and ``args`` as they are, or captured again from dense copies of ``args`` when an example
    tensor or an input of the program has a 0 stride (the values, and so parity, are unchanged)."""
    import torch

    inputs = set(program.graph_signature.user_inputs)
    values = [node.meta.get("val") for node in program.graph.nodes if node.op == "placeholder" and node.name in inputs]
    tensors = [t for t in (*args, *values) if isinstance(t, torch.Tensor)]
    if not any(0 in t.stride() for t in tensors):
        return program, args
    dense = tuple(torch.empty(a.shape, dtype=a.dtype).copy_(a) if isinstance(a, torch.Tensor) else a for a in args)
    return torch.export.export(program.module(), dense, strict=False), dense


def _lower(program: Any, input_names: list[str], output_names: list[str]) -> tuple[Any, int]:
    """The edge program lowered to XNNPACK, and how many recurrent-layer ops were rewritten for it."""
    from edgekit.converters._executorch_recurrent import RecurrentSliceViewPass
    from executorch.exir import to_edge_transform_and_lower

    names = json.dumps({"inputs": list(input_names), "outputs": list(output_names)})
    recurrent = RecurrentSliceViewPass()
    edge = to_edge_transform_and_lower(program, transform_passes=[recurrent], partitioner=[xnnpack_partitioner()],
                                       constant_methods={"edgekit_io": names})
    return edge, recurrent.rewritten


def xnnpack_partitioner() -> Any:
    """ExecuTorch's XNNPACK partitioner with every default config, PReLU's taking only 4-D inputs."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.node_configs import PreluConfig
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    class NchwPreluConfig(PreluConfig):
        def check_constraints(self, node: Any, ep: Any) -> bool:
            value = node.all_input_nodes[0].meta.get("val")
            return getattr(value, "dim", lambda: 0)() == 4 and super().check_constraints(node, ep)

    return XnnpackPartitioner(configs=[NchwPreluConfig if c is PreluConfig else c for c in ALL_PARTITIONER_CONFIGS])


def _quantized(program: Any, args: tuple[Any, ...], names: list[str], request: RouteRequest) -> tuple[Any, str]:
    """The program quantized with the pt2e XNNPACK quantizer and calibrated, exported again, and a note."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not request.calibration:
        raise ConversionError("int8 quantization needs calibration data and none was given", "pass calibration samples")
    if request.float_layers:
        raise ConversionError(
            f"the ExecuTorch XNNPACK quantizer cannot keep layers in float ({', '.join(request.float_layers)})",
            "executorch 1.4's XNNPACKQuantizer does not support set_module_name(name, None); build int8 without "
            "float_layers, or keep those layers in float with the onnx or openvino route")
    per_channel = request.scheme.per_channel
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
    prepared = prepare_pt2e(program.module(), quantizer)
    for feed in request.calibration:
        prepared(*(torch.from_numpy(feed[name]).to(arg.dtype) for name, arg in zip(names, args, strict=True)))
    converted = convert_pt2e(prepared)
    note = (f"int8: pt2e XNNPACKQuantizer, symmetric {'per-channel' if per_channel else 'per-tensor'} int8 weights, "
            f"asymmetric int8 activations, calibrated on {len(request.calibration)} samples")
    return torch.export.export(converted, args, strict=False), note


def _write(path: Path, buffer: bytes) -> None:
    from edgekit.atomic import atomic_write_bytes

    atomic_write_bytes(path, buffer)


def check_runs(path: Path, args: tuple[Any, ...]) -> None:
    """Load ``path`` in the ExecuTorch runtime and run ``forward`` once: a .pte that does not load or run
    is this route's failure, with the runtime's message."""
    from edgekit.formats.executorch.runtime import load

    runner = load(path)
    try:
        runner.run_prepared([arg.contiguous() for arg in args])
    except Exception as exc:
        raise ConversionError(f"the .pte loads but does not run: {first_line(exc)}",
                              "the runtime's message names the failing kernel or delegate") from exc


def partition_note(path: Path) -> str:
    """The partition report of the written .pte in one line."""
    from edgekit.formats.executorch.program import partition_report

    report = partition_report(path)
    delegated = ", ".join(f"{op} x{n}" for op, n in sorted(report["delegated_nodes"].items())) or "none"
    portable = ", ".join(f"{op} x{n}" for op, n in sorted(report["portable_kernels"].items())) or "none"
    return (f"partition: {report['delegates']} XNNPACK delegate(s) running {delegated}; "
            f"portable kernels (not delegated): {portable}")
