"""Check a model or an artifact against a device profile: ops, precision, dtypes, shapes and layout.

``check()`` is ``edgekit check`` / ``edgekit.check``: for a source model it loads the model (in a worker
process for files), lists its layers/ops and maps them to each format's op set; for an artifact (.tflite,
OpenVINO .xml, or after conversion) it reads the ops the file holds. ``evaluate()`` is the rule set both use.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.compat.opsets import OpList, load_opset
from edgekit.compat.report import CompatibilityReport, Finding, OpInfo, OpStats
from edgekit.options import QuantScheme
from edgekit.profiles import DeviceProfile, load_profile
from edgekit.progress import ProgressCallback, ProgressEvent, ignore, raise_if_cancelled
from edgekit.specs import FORMATS, TensorSpec

# A concrete replacement for ops accelerators often lack (TFLite builtin names; ONNX op types).
_REPLACEMENTS = {
    "LEAKY_RELU": "use ReLU (or PReLU where the device has it) instead of LeakyReLU",
    "GELU": "use ReLU or HardSwish instead of GELU",
    "ELU": "use ReLU instead of ELU",
    "BATCH_MATMUL": "express the product as a Dense / 1x1 convolution with constant weights",
    "DIV": "multiply by a constant reciprocal instead of dividing",
    "EXP": "avoid exp outside the final softmax",
    "ARG_MAX": "take the arg-max on the host after the model",
    "CUMSUM": "compute the cumulative sum on the host",
    "GATHER": "move the embedding lookup / gather before the model, on the host",
    "WHILE": "unroll the recurrent layer (unroll=True) or run it on the CPU",
    "Erf": "use an approximate GELU (tanh form) or ReLU",
}


def load_allowlist(profile: DeviceProfile) -> OpList | None:
    """The profile's op set (by name or file) or inline allow-list, or None when it states none."""
    if profile.ops is not None:
        return profile.ops
    return load_opset(profile.opset) if profile.opset else None


def evaluate(
    ops_by_format: Mapping[str, list[OpInfo]],
    profile: DeviceProfile,
    *,
    precision: str,
    scheme: QuantScheme,
    inputs: Sequence[TensorSpec],
    stage: str = "source",
    exact_formats: Sequence[str] = (),
    fixed_shapes: Mapping[str, Sequence[int]] | None = None,
    artifact_inputs: Sequence[TensorSpec] | None = None,
) -> CompatibilityReport:
    """Findings and fallback statistics for ``ops_by_format`` (format -> ops) on ``profile``."""
    findings: list[Finding] = []
    findings += _precision_findings(profile, precision)
    findings += _io_findings(profile, precision, scheme, artifact_inputs)
    findings += _shape_findings(profile, artifact_inputs or inputs, fixed_shapes or {}, stage)
    findings += _layout_findings(profile, inputs)
    allowlist = load_allowlist(profile)
    stats = {}
    for fmt, ops in ops_by_format.items():
        certainty = "known" if stage == "artifact" or fmt in exact_formats else "likely"
        op_findings, stats[fmt] = _op_findings(ops, fmt, allowlist, profile, certainty)
        findings += op_findings + _route_findings(ops, fmt)
    return CompatibilityReport(target=profile.name, stage=stage, formats=tuple(ops_by_format), precision=precision,
                               findings=tuple(findings), stats=stats)


def _precision_findings(profile: DeviceProfile, precision: str) -> list[Finding]:
    if not profile.supported_precisions or precision in profile.supported_precisions:
        return []
    allowed = ", ".join(profile.supported_precisions)
    return [Finding(kind="precision", severity="error", certainty="known",
                    message=f"{profile.name} does not run {precision} models (it runs: {allowed})",
                    hint=f"leave precision to the profile ({profile.precision}) "
                         f"or give precision={profile.supported_precisions[0]!r}")]


def _io_findings(profile: DeviceProfile, precision: str, scheme: QuantScheme,
                 artifact_inputs: Sequence[TensorSpec] | None) -> list[Finding]:
    if precision != "int8" or profile.quantization.io_dtype == "float32":
        return []  # only a profile that asks for integer I/O (its accelerator has no float path at the edges)
    if artifact_inputs is not None:
        floats = [s.name for s in artifact_inputs if s.dtype.startswith("float")]
    else:
        floats = ["inputs/outputs"] if scheme.io_dtype == "float32" else []
    if not floats:
        return []
    wanted = profile.quantization.io_dtype
    return [Finding(kind="dtype", severity="fallback", certainty="known" if artifact_inputs is not None else "likely",
                    message=f"float32 I/O ({', '.join(floats)}) on an integer-only accelerator: the QUANTIZE/DEQUANTIZE "
                            "ops at the model's edges run on the CPU",
                    hint=f"quantization={{'io_dtype': '{wanted}'}} / --quant io_dtype={wanted}, and feed quantized inputs")]


def _shape_findings(profile: DeviceProfile, inputs: Sequence[TensorSpec], fixed: Mapping[str, Sequence[int]],
                    stage: str) -> list[Finding]:
    if not profile.static_shapes:
        return []
    findings = []
    for spec in inputs:
        if spec.name in fixed:
            continue
        dynamic = [i for i, d in enumerate(spec.shape) if d is None]
        if not dynamic:
            continue
        text = spec.describe()
        if stage == "artifact":
            findings.append(Finding(kind="dynamic_shape", severity="error", certainty="known", layer=spec.name,
                                    message=f"input {text} has dynamic dimension(s) {dynamic}; "
                                            f"{profile.name} needs static shapes",
                                    hint="convert again for this target (it fixes shapes) or give input_shapes= / --input-shape"))
        elif dynamic == [0]:
            findings.append(Finding(kind="dynamic_shape", severity="change", certainty="known", layer=spec.name,
                                    message=f"input {text} has a dynamic batch; {profile.name} needs static shapes",
                                    hint="edgekit.convert fixes the batch to 1 for this target; "
                                         "give input_shapes= for another size"))
        else:
            findings.append(Finding(kind="dynamic_shape", severity="error", certainty="known", layer=spec.name,
                                    message=f"input {text} has dynamic dimension(s) {dynamic}; "
                                            f"{profile.name} needs static shapes",
                                    hint=f"give input_shapes={{'{spec.name}': [...]}} / --input-shape {spec.name}=..., "
                                         "or calibration/validation data whose shape edgekit can use"))
    return findings


def _layout_findings(profile: DeviceProfile, inputs: Sequence[TensorSpec]) -> list[Finding]:
    if profile.layout == "any":
        return []
    other = {"NHWC": "NCHW", "NCHW": "NHWC"}[profile.layout]
    return [Finding(kind="layout", severity="info", certainty="likely", layer=spec.name,
                    message=f"input {spec.name} is {other}; {profile.name} prefers {profile.layout}",
                    hint=f"the converter inserts Transpose ops; export the model in {profile.layout} to avoid them")
            for spec in inputs if spec.layout == other]


def _route_findings(ops: list[OpInfo], fmt: str) -> list[Finding]:
    return [Finding(kind="route", severity="error", certainty="known", layer=op.name, op=op.op, format=fmt,
                    message=f"the {fmt} route cannot convert {op.name}: {op.refused[fmt]}",
                    hint=f"replace the {op.op} node, or build this model for another format")
            for op in ops if fmt in op.refused]


def _op_findings(ops: list[OpInfo], fmt: str, allowlist: OpList | None, profile: DeviceProfile,
                 certainty: str) -> tuple[list[Finding], OpStats]:
    allowed = allowlist.allowed(fmt) if allowlist is not None else None
    counted = [op for op in ops if op.targets.get(fmt, (op.op,))]
    total = sum(op.compute for op in counted)
    if allowed is None:
        return [], OpStats(ops_total=len(counted), compute_total=total)
    severity = "fallback" if profile.cpu_fallback else "error"
    where = "on the CPU" if profile.cpu_fallback else "nowhere: the device has no CPU fallback"
    findings, falling, cut = [], [], None
    for index, op in enumerate(counted):
        missing = [name for name in op.targets.get(fmt, (op.op,)) if name not in allowed]
        if missing:
            falling.append(op)
            cut = index if cut is None else cut
            hint = next((_REPLACEMENTS[m] for m in missing if m in _REPLACEMENTS), None) or \
                f"replace {op.op} with ops {profile.name} runs, e.g. {', '.join(sorted(allowed)[:6])}, ..."
            findings.append(Finding(kind="op", severity=severity, certainty=certainty, layer=op.name, op=op.op, format=fmt,
                                    compute=op.compute, message=f"{op.name} ({op.op} -> {fmt} {', '.join(missing)}) runs {where}",
                                    hint=hint))
    if allowlist.partitioning == "prefix" and cut is not None:
        seen = {id(op) for op in falling}
        tail = [op for op in counted[cut + 1:] if id(op) not in seen]
        if tail:
            falling += tail
            findings.append(Finding(kind="op", severity=severity, certainty=certainty, format=fmt,
                                    compute=sum(op.compute for op in tail), layer=counted[cut].name,
                                    message=f"{len(tail)} supported op(s) after {counted[cut].name} also run on the CPU: "
                                            f"{profile.name} maps only the ops before the first unsupported one",
                                    hint=f"make {counted[cut].name} supported, or move it to the end of the model"))
    stats = OpStats(ops_total=len(counted), ops_fallback=len(falling), compute_total=total,
                    compute_fallback=sum(op.compute for op in falling), opset_known=True,
                    fallback_ops=tuple(op.name for op in falling))
    return findings, stats


def check_artifact(path: str | Path, fmt: str, profile: DeviceProfile | str, *, precision: str,
                   inputs: Sequence[TensorSpec] | None = None) -> CompatibilityReport:
    """Check one artifact's real ops, I/O dtypes and shapes (``inputs``: its input specs, if known)."""
    from edgekit.formats import get_format

    profile = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
    artifact = get_format(fmt)
    if inputs is None:
        inputs = artifact.member("read_inputs")(Path(path))
    return evaluate({fmt: artifact.member("list_ops")(Path(path))}, profile, precision=precision, scheme=profile.quantization,
                    inputs=inputs, stage="artifact", artifact_inputs=inputs)


def artifact_format(path: Path) -> str | None:
    """The format of ``path`` when it holds an artifact that is not also a model source (ONNX is checked as a model)."""
    from edgekit.formats.sniff import detect, read_head

    if not path.is_file():
        return None
    found = detect(read_head(path), path)
    return found.name if found is not None and found.source_framework is None else None


def check(
    model: Any,
    *,
    target: str | Path = "cpu-x86",
    formats: Sequence[str] | str | None = None,
    precision: str | None = None,
    quantization: Mapping[str, Any] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    example_inputs: Any = None,
    allow_unsafe: bool = False,
    isolate: bool | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> CompatibilityReport:
    """List what ``target`` cannot run in ``model``, will run on a fallback, or needs changed, with hints.

    ``model`` is anything :func:`edgekit.convert` takes, or a converted artifact (.tflite, OpenVINO .xml).
    Formats and precision default to the profile's (for an artifact, the precision its weights show).
    ``progress`` receives ``ProgressEvent``s (stages ``load``, ``check``); setting ``cancel`` stops the
    check (and its worker process) with ``edgekit.errors.Cancelled``.
    """
    from edgekit.errors import InvalidOptionError

    progress = progress or ignore
    profile = load_profile(target)
    if isinstance(model, (str, Path)) and (fmt := artifact_format(Path(model))) is not None:
        from edgekit.formats import get_format

        raise_if_cancelled(cancel, "edgekit.check")
        progress(ProgressEvent("check", 0.0, f"listing the ops of {Path(model).name}"))
        stored = get_format(fmt).member("stored_precision")
        report = check_artifact(model, fmt, profile, precision=precision or stored(Path(model)))
        progress(ProgressEvent("check", 1.0, "checked"))
        return report
    precision = precision or profile.precision
    format_list = [formats] if isinstance(formats, str) else list(formats or profile.formats)
    unknown = [f for f in format_list if f not in FORMATS]
    if unknown:
        raise InvalidOptionError(f"unknown format '{unknown[0]}'", f"choose from: {', '.join(FORMATS)}")
    try:
        scheme = QuantScheme.model_validate({**profile.quantization.model_dump(), **dict(quantization or {})})
    except ValueError as exc:
        fields = ", ".join(QuantScheme.model_fields)
        raise InvalidOptionError(f"invalid quantization options: {exc}", f"fields: {fields}") from None
    source, ops = open_and_list(model, example_inputs=example_inputs, allow_unsafe=allow_unsafe, isolate=isolate, timeout=timeout,
                                progress=progress, cancel=cancel)
    from edgekit.shapes import fix_shapes

    raise_if_cancelled(cancel, "edgekit.check")
    fixed = fix_shapes(input_shapes, source.inputs)
    exact = ("onnx",) if source.framework == "onnx" else ()
    report = evaluate({fmt: ops for fmt in format_list}, profile, precision=precision, scheme=scheme, inputs=source.inputs,
                      exact_formats=exact, fixed_shapes=fixed)
    progress(ProgressEvent("check", 1.0, "checked"))
    return report


def open_and_list(model: Any, *, example_inputs: Any = None, allow_unsafe: bool = False, isolate: bool | None = None,
                  timeout: float | None = None, progress: ProgressCallback = ignore,
                  cancel: threading.Event | None = None) -> tuple[Any, list[OpInfo]]:
    """Load ``model`` (in a worker process for files) and list its ops: (ModelSource, ops)."""
    import tempfile

    from edgekit.messages import ListSourceOps, OpenSource
    from edgekit.sources import is_in_memory
    from edgekit.worker import InProcessSession, WorkerSession

    if isolate is None:
        isolate = not is_in_memory(model)
    with tempfile.TemporaryDirectory(prefix="edgekit-check-") as logs:
        session = WorkerSession(Path(logs), cancel) if isolate else InProcessSession()
        try:
            raise_if_cancelled(cancel, "edgekit.check")
            source = session.call(OpenSource(model, example_inputs, allow_unsafe), progress=progress, timeout=timeout)
            raise_if_cancelled(cancel, "edgekit.check")
            ops = session.call(ListSourceOps(), progress=progress, timeout=timeout)
        finally:
            session.close()
    return source, ops
