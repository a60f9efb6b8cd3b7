"""Shared last step of every route to ONNX: save an fp32 ONNX file at the asked precision.

``finish_onnx`` takes the fp32 ONNX file a route wrote into ``request.out_dir`` and writes
``<stem>.onnx`` (plus ``<stem>.onnx.data`` when the weights live in an external file) at fp32,
fp16 (float16 weights and compute, float32 inputs/outputs) or int8 (ONNX Runtime static QDQ
quantization calibrated on ``request.calibration``). The intermediate file(s) are deleted.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import ConversionError, first_line
from edgekit.quiet import quiet
from edgekit.routes import RouteOutput
from edgekit.sample_progress import SampleProgress

if TYPE_CHECKING:
    from edgekit.options import QuantScheme
    from edgekit.routes import RouteRequest

# Above this many bytes a model cannot be one protobuf file (the 2 GiB limit, with headroom).
_PROTOBUF_LIMIT = (2 << 30) - (64 << 20)
_MIN_QDQ_OPSET = 13


def finish_onnx(fp32_onnx_path: Path, request: RouteRequest) -> RouteOutput:
    """Turn the fp32 ONNX file ``fp32_onnx_path`` into the final artifact at ``request.precision``."""
    source = Path(fp32_onnx_path)
    final = request.out_dir / f"{request.stem}.onnx"
    if source.resolve() == final.resolve():
        raise ValueError("finish_onnx needs the intermediate file under another name than the final one")
    intermediates = [source, *_external_files(source)]
    external = _wants_external_data(intermediates)
    fallbacks: list[Any] = []
    try:
        if request.precision == "int8":
            notes, fallbacks = _quantize_int8(source, final, request, external)
        elif request.precision == "fp16":
            notes = _save(_to_fp16(_load(source)), final, external)
        elif request.precision == "fp32":
            notes = _save(_load(source), final, external)
        else:
            raise ConversionError(
                f"ONNX artifacts have no '{request.precision}' precision", "choose fp32, fp16 or int8"
            )
    finally:
        for path in intermediates:
            if path.resolve() != final.resolve():
                path.unlink(missing_ok=True)
    data = final.with_name(final.name + ".data")
    companions = [data] if data.exists() else []
    return RouteOutput(path=final, companions=companions, notes=notes, fallbacks=fallbacks)


def _load(path: Path) -> Any:
    """The model with its external data (if any) read into memory."""
    import onnx

    return onnx.load(str(path), load_external_data=True)


def _external_files(path: Path) -> list[Path]:
    """External data files the intermediate model points at (checked to stay in its folder)."""
    from edgekit.sources.onnx import external_data_files

    return external_data_files(path)


def _wants_external_data(files: list[Path]) -> bool:
    came_with_data = len(files) > 1
    return came_with_data or sum(f.stat().st_size for f in files if f.exists()) > _PROTOBUF_LIMIT


def _save(model: Any, final: Path, external: bool) -> list[str]:
    """Save ``model`` at ``final``: one file, or with all weights in ``<final>.data``."""
    import onnx

    data = final.with_name(final.name + ".data")
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if external or model.ByteSize() > _PROTOBUF_LIMIT:
        onnx.save_model(
            model,
            str(final),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data.name,
            size_threshold=1024,  # small tensors (shapes, scalars) stay inline, where shape inference reads them
        )
        return [f"weights in external data file {data.name}"] if data.exists() else []
    onnx.save_model(model, str(final))
    return []


def _to_fp16(model: Any) -> Any:
    """float16 weights and activations; graph inputs and outputs stay float32."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        return convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=model.ByteSize() > _PROTOBUF_LIMIT)
    except Exception as exc:  # the converter raises plain exceptions on odd graphs
        raise ConversionError(
            f"float16 conversion of the ONNX model failed: {first_line(exc, 300)}",
            "use fp32 or int8 for this model, or report the op named above",
        ) from exc


# ---------------------------------------------------------------- int8


def _quantize_int8(source: Path, final: Path, request: RouteRequest, external: bool) -> tuple[list[str], list[Any]]:
    """ONNX Runtime static QDQ quantization calibrated on ``request.calibration``, with per-node fallbacks."""
    import onnx

    from edgekit.converters._ort_fallback import Graph, quantize_per_node

    scheme = request.scheme
    prep = _prepare_for_quantization(source, request.out_dir / f".{request.stem}.prep.onnx", external)
    quantized = request.out_dir / f".{request.stem}.quant.onnx"
    unshared = request.out_dir / f".{request.stem}.bias.onnx"
    try:
        prepared, copies = _unshare_biases(prep, unshared, external)
        header = onnx.load(str(prepared), load_external_data=False)
        graph_inputs = _graph_inputs(header)
        _check_node_names(header, request.float_layers)
        graph = Graph(header)
        activation_type, activation_name = _activation_type(scheme)
        attempt = _Attempt(prepared, quantized, request, graph_inputs, graph, external, activation_type)
        fallbacks = quantize_per_node(attempt, graph, scheme.per_channel)
        saved = _save(_load(quantized), final, external)
    finally:
        temporary = [prep, unshared, quantized]
        for path in {*temporary, *(d for t in temporary for d in _sibling_data(t))} - {source}:
            path.unlink(missing_ok=True)
    granularity = "per-channel" if scheme.per_channel else "per-tensor"
    weights = "symmetric" if scheme.symmetric_weights else "asymmetric"
    weights += " 7-bit (int8 products saturate on x86 CPUs without VNNI)" if scheme.reduced_weights else ""
    acts = "symmetric" if scheme.symmetric_activations else "asymmetric"
    note = (
        f"ONNX Runtime static QDQ quantization ({granularity} {weights} int8 weights, {acts} {activation_name} "
        f"activations, {scheme.calibration_method} calibration, {len(request.calibration)} samples)"
    )
    kept = [f"kept in float: {', '.join(request.float_layers)}"] if request.float_layers else []
    if copies:
        kept.append(f"{copies} bias tensors shared by several layers copied per layer before quantization "
                    "(ONNX Runtime names its own copies after tensors the graph may already have)")
    found = [f"warning: ONNX Runtime's quantizer failed on {f.op_type} {f.node} ({f.reason}): {f.action}" for f in fallbacks]
    return [note, *kept, *found, *saved], list(fallbacks)


class _Attempt:
    """One try of ``quantize_static`` with a fallback plan, then the result loaded and run on one sample."""

    def __init__(self, prepared: Path, quantized: Path, request: RouteRequest, graph_inputs: list[tuple[str, np.dtype]],
                 graph: Any, external: bool, activation_type: Any) -> None:
        self.prepared, self.quantized, self.request, self.graph = prepared, quantized, request, graph
        self.graph_inputs, self.external, self.activation_type = graph_inputs, external, activation_type

    def __call__(self, plan: Any) -> None:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantFormat, quantize_static

        scheme, request = self.request.scheme, self.request
        for path in (self.quantized, *_sibling_data(self.quantized)):
            path.unlink(missing_ok=True)
        if plan.per_tensor or plan.excluded:
            request.progress(0.3, f"ONNX Runtime quantization again: {len(plan.per_tensor)} node(s) with per-tensor "
                                  f"weights, {len(plan.excluded)} in float")
        reader = _CalibrationReader(request, self.graph_inputs)
        extra: dict[str, Any] = {"ActivationSymmetric": scheme.symmetric_activations, "WeightSymmetric": scheme.symmetric_weights}
        if plan.per_tensor:
            extra["TensorQuantOverrides"] = plan.overrides(self.graph)
        with quiet():
            quantize_static(
                str(self.prepared), str(self.quantized), reader, quant_format=QuantFormat.QDQ,
                per_channel=scheme.per_channel, activation_type=self.activation_type, weight_type=_quant_type("QInt8"),
                calibrate_method=_calibration_method(scheme.calibration_method), use_external_data_format=self.external,
                reduce_range=scheme.reduced_weights,
                nodes_to_exclude=[*request.float_layers, *plan.excluded], extra_options=extra,
            )
            # a quantized graph ONNX Runtime cannot load or run is a quantizer failure too (e.g. a renamed bias
            # copy that collides with a tensor of the graph): found here, it is handled per node like the others
            session = ort.InferenceSession(str(self.quantized), providers=["CPUExecutionProvider"])
            reader.rewind()
            session.run(None, reader.get_next())


_BIASED = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}


def _unshare_biases(path: Path, target: Path, external: bool) -> tuple[Path, int]:
    """A copy at ``target`` in which every layer has its own bias initializer, with the number of copies made;
    ``path`` itself (and 0) when no bias is shared.

    ONNX Runtime's QDQ quantizer copies a bias shared by several layers itself, naming the copies
    ``<bias><n>`` without checking the graph's other tensor names: basic-pitch's 18 convolutions share one
    bias, its second copy took the name of a convolution's output, and the quantized file did not load.
    """
    import onnx

    def biased(model: Any) -> list[tuple[Any, str]]:
        inits = {i.name for i in model.graph.initializer}
        return [(n, n.input[_BIASED[n.op_type]]) for n in model.graph.node
                if n.op_type in _BIASED and len(n.input) > _BIASED[n.op_type] and n.input[_BIASED[n.op_type]] in inits]

    uses = [bias for _, bias in biased(onnx.load(str(path), load_external_data=False))]
    if len(uses) == len(set(uses)):
        return path, 0
    model = _load(path)
    graph = model.graph
    taken = {*(i.name for i in graph.initializer), *(v.name for v in [*graph.input, *graph.output, *graph.value_info]),
             *(t for n in graph.node for t in [*n.input, *n.output])}
    tensors = {i.name: i for i in graph.initializer}
    first: set[str] = set()
    copies = 0
    for node, bias in biased(model):
        if bias not in first:
            first.add(bias)
            continue
        name = next(f"{bias}__{node.name or 'bias'}_{i}" for i in range(len(taken) + 1)
                    if f"{bias}__{node.name or 'bias'}_{i}" not in taken)
        copy = onnx.TensorProto()
        copy.CopyFrom(tensors[bias])
        copy.name = name
        graph.initializer.append(copy)
        node.input[_BIASED[node.op_type]] = name
        taken.add(name)
        copies += 1
    _save(model, target, external)
    return target, copies


def _check_node_names(model: Any, names: tuple[str, ...]) -> None:
    """Every layer to keep in float names a node of the graph ONNX Runtime quantizes (it ignores unknown names)."""
    present = {node.name for node in model.graph.node}
    unknown = [name for name in names if name not in present]
    if unknown:
        close = sorted(n for n in present if any(u.split("/")[0] in n for u in unknown))[:5]
        raise ConversionError(
            f"cannot keep {', '.join(unknown)} in float: no node of the ONNX graph has that name "
            "(ONNX Runtime's pre-processing may have fused or renamed it)",
            "name the nodes as edgekit debug lists them for the int8 ONNX artifact"
            + (f" (similar: {', '.join(close)})" if close else ""),
        )


def _prepare_for_quantization(source: Path, target: Path, external: bool) -> Path:
    """Shape inference and graph clean-up before quantization; the source itself if that fails."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model_path = source
    model = onnx.load(str(source), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), _MIN_QDQ_OPSET)
    if opset < _MIN_QDQ_OPSET:
        model_path = _upgrade_opset(source, target.with_name(target.name + ".opset.onnx"), external)
    model_path = _lift_constants(model_path, target.with_name(target.name + ".const.onnx"), external, source)
    try:
        with quiet():
            quant_pre_process(
                str(model_path),
                str(target),
                save_as_external_data=external,
                all_tensors_to_one_file=True,
                external_data_location=target.name + ".data" if external else None,
            )
    except Exception:  # noqa: BLE001 - symbolic shape inference does not know every op; quantize without it
        for path in (target, *_sibling_data(target)):
            path.unlink(missing_ok=True)
        return model_path
    if model_path != source:
        for path in (model_path, *_sibling_data(model_path)):
            path.unlink(missing_ok=True)
    return target


def _lift_constants(path: Path, target: Path, external: bool, source: Path) -> Path:
    """A copy with Constant-node tensors made initializers (ORT quantizes initializer weights only), or ``path``.

    Some exporters (paddle2onnx) keep every weight in a Constant node: quantized as is, such a model gets QDQ
    pairs on its activations while all its weights stay float.
    """
    import onnx

    def constants(model: Any) -> list[Any]:
        return [n for n in model.graph.node if n.op_type == "Constant" and [a.name for a in n.attribute] == ["value"]]

    header = onnx.load(str(path), load_external_data=False)
    if not constants(header) or header.ir_version < 4:  # before IR 4 an initializer must also be a graph input
        return path
    model = _load(path)
    for node in constants(model):
        tensor = onnx.TensorProto()
        tensor.CopyFrom(node.attribute[0].t)
        tensor.name = node.output[0]
        model.graph.initializer.append(tensor)
        model.graph.node.remove(node)
    _save(model, target, external)
    if path != source:
        for old in (path, *_sibling_data(path)):
            old.unlink(missing_ok=True)
    return target


def _upgrade_opset(source: Path, target: Path, external: bool) -> Path:
    """A copy of the model at opset 13, the first with per-axis QuantizeLinear."""
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(_load(source), _MIN_QDQ_OPSET)
    except Exception as exc:
        raise ConversionError(
            f"the model's opset is below {_MIN_QDQ_OPSET} and could not be upgraded for int8: {first_line(exc, 300)}",
            f"export the model with opset {_MIN_QDQ_OPSET} or newer",
        ) from exc
    _save(upgraded, target, external)
    return target


def _sibling_data(path: Path) -> list[Path]:
    data = path.with_name(path.name + ".data")
    return [data] if data.exists() else []


def _graph_inputs(model: Any) -> list[tuple[str, np.dtype]]:
    """(name, numpy dtype) of the real graph inputs (initializers excluded)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    initializers = {init.name for init in model.graph.initializer}
    return [
        (value.name, np.dtype(tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)))
        for value in model.graph.input
        if value.name not in initializers
    ]


class _CalibrationReader:
    """Feeds ``request.calibration`` to the calibrator, matched to the graph's inputs.

    Feeds are keyed by the source's input names; when the exported graph renamed its inputs,
    they are matched by position instead.
    """

    def __init__(self, request: RouteRequest, graph_inputs: list[tuple[str, np.dtype]]) -> None:
        self._feeds = [_match_feed(feed, request, graph_inputs) for feed in request.calibration]
        self._next = 0
        self._progress = SampleProgress(request.progress, "ONNX Runtime calibration", len(self._feeds), 0.3, 0.55)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next and self._next <= len(self._feeds):
            self._progress.tick()  # the previous sample has run: the reader is asked for the next after it
        if self._next >= len(self._feeds):
            self._next = len(self._feeds) + 1
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


def _match_feed(
    feed: dict[str, np.ndarray], request: RouteRequest, graph_inputs: list[tuple[str, np.dtype]]
) -> dict[str, np.ndarray]:
    names = [name for name, _ in graph_inputs]
    if all(name in feed for name in names):
        arrays = [feed[name] for name in names]
    else:
        source_names = [spec.name for spec in request.source.spec.inputs]
        if len(source_names) != len(names) or not all(name in feed for name in source_names):
            raise ConversionError(
                f"calibration samples have inputs {sorted(feed)} but the ONNX model expects {names}",
                "give one calibration array per model input, keyed by input name",
            )
        arrays = [feed[name] for name in source_names]
    return {name: np.asarray(array).astype(dtype, copy=False) for (name, dtype), array in zip(graph_inputs, arrays)}


def _activation_type(scheme: QuantScheme) -> tuple[Any, str]:
    if scheme.activations == "int16":
        return _quant_type("QInt16"), "int16"
    if scheme.symmetric_activations:
        return _quant_type("QInt8"), "int8"
    return _quant_type("QUInt8"), "uint8"


def _quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return getattr(QuantType, name)


def _calibration_method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]

