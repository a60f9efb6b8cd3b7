"""``edgekit.convert``: one call from a model to validated artifacts and a manifest."""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.atomic import ensure_writable_dir, staging_dir
from edgekit.compat.gate import budgets_for, complete_static_shapes, finish_artifact, precheck
from edgekit.data import load_feeds, synthetic_feeds
from edgekit.errors import DataError, EdgekitError, InvalidOptionError, did_you_mean
from edgekit.manifest import MANIFEST_NAME, write_manifest
from edgekit.optimize.labelled import load_labelled
from edgekit.optimize.plan import isolation, precisions_with, resolve_steps, save_for_worker
from edgekit.optimize.steps import Step
from edgekit.options import QuantScheme, Tolerances
from edgekit.profiles import DeviceProfile, load_profile
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.rescue import parse_target, rescue_route
from edgekit.routes import ROUTES, find_route
from edgekit.session import RouteJob
from edgekit.shapes import check_states, fix_shapes, with_shapes
from edgekit.sources import framework_of_object, is_in_memory
from edgekit.sources.sniff import sniff
from edgekit.specs import FORMATS, PRECISIONS, Build, RouteFailure, TensorSpec
from edgekit.worker import Cancelled, InProcessSession, WorkerSession

DEFAULT_CALIBRATION_SAMPLES = 300
DEFAULT_VALIDATION_SAMPLES = 200
SYNTHETIC_VALIDATION_SAMPLES = 16


def convert(
    model: Any,
    *,
    target: str | Path = "cpu-x86",
    formats: Sequence[str] | str | None = None,
    precision: Sequence[str] | str | None = None,
    calibration_data: Any = None,
    validation_data: Any = None,
    output_dir: str | Path = "build/edgekit",
    example_inputs: Any = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    states: Mapping[str, str] | None = None,
    allow_unsafe: bool = False,
    quantization: Mapping[str, Any] | None = None,
    tolerances: Mapping[str, float] | None = None,
    name: str | None = None,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
    isolate: bool | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
    budgets: Mapping[str, float] | None = None,
    accuracy_target: Mapping[str, float] | str | None = None,
    optimizations: Sequence[Step] | str | Path | None = None,
    train_data: Any = None,
    val_data: Any = None,
    layout: str | None = None,
) -> Build:
    """Convert ``model`` for ``target`` into every asked format and precision, validate each artifact, write a manifest.

    ``model`` is a path (.keras, .h5, SavedModel folder, TorchScript .pt, .pt2, .onnx) or an in-memory
    Keras model, ``torch.nn.Module`` (with ``example_inputs``) or ``onnx.ModelProto``. Formats and
    precision default to the target profile's. Model files are loaded in a worker process
    (``isolate``), in-memory models in this one. Artifacts that fail validation are kept and marked
    failed; routes that produce nothing are listed in ``Build.failures``. ``input_shapes`` fixes
    dynamic dimensions ({input name: shape}) for conversion, calibration and validation; ``states``
    ({state input: output}) validates the feeds as one sequence with the state carried step to step.
    The model is checked against the target first (``edgekit.check``): a broken hard limit refuses the
    build unless ``force``; a ``static_shapes`` target gets every dynamic dimension fixed. ``budgets``
    (``max_size_bytes``, ``min_cosine``, ...) override the profile's and are judged per artifact.
    ``accuracy_target`` ({"cosine": 0.99, "top1": 0.97}) makes every int8 route rescue itself
    (``edgekit.rescue``): scheme changes and layers kept in float until the target is met.
    ``optimizations`` (``edgekit.prune``, ``edgekit.distill``, ``edgekit.qat`` steps, or a recipe file) run in
    order on ``train_data`` before conversion, each measured on ``val_data`` ((x, y) arrays or .npz files with
    x and y); a step losing more than the ``max_accuracy_drop`` budget stops the build. Labelled ``val_data``
    also gives every artifact its top-1 accuracy, and ``train_data`` is the default calibration data.
    ``layout="NHWC"`` gives TFLite artifacts NHWC inputs and outputs where the source's rank-4 tensors are NCHW
    (transposes at the boundary; validation feeds them transposed); the default keeps the source's layout.
    """
    progress = progress or ignore
    cancel = cancel or threading.Event()
    profile = load_profile(target)
    framework = _framework_of(model)
    explicit_formats = formats is not None
    format_list = _as_list(formats, profile.formats, "format", FORMATS)
    steps, train_data, val_data = resolve_steps(optimizations, train_data, val_data)
    precision_list = precisions_with(steps, _as_list(precision, (profile.precision,), "precision", PRECISIONS), precision is not None)
    jobs_wanted = _routes_to_build(framework, format_list, precision_list, explicit_formats)
    scheme = _scheme(profile, quantization)
    budget_limits = budgets_for(profile, budgets)
    rescue_target = parse_target(accuracy_target) if accuracy_target else None
    layout = _layout(layout, format_list)
    out = ensure_writable_dir(Path(output_dir))
    isolate = isolation(model, steps, isolate)
    config = {
        "target": profile.name,
        "requested": {"formats": formats, "precision": precision, "quantization": dict(quantization or {}),
                      "tolerances": dict(tolerances or {}), "allow_unsafe": allow_unsafe,
                      "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()}, "states": dict(states or {}),
                      "optimizations": [step.model_dump(mode="json") for step in steps]},
        "effective": {"formats": format_list, "precision": precision_list, "quantization": scheme.model_dump(),
                      "calibration_samples": calibration_samples, "validation_samples": validation_samples,
                      "layout": layout or "source"},
        "profile": profile.model_dump(mode="json"),
        "budgets": {"requested": dict(budgets or {}), "effective": budget_limits.model_dump(exclude_none=True), "force": force},
    }
    optimization = None
    with staging_dir(out) as staging:
        session = WorkerSession(staging, cancel) if isolate else InProcessSession()
        try:
            if isolate and is_in_memory(model) and steps:
                model, steps = save_for_worker(model, steps, staging)
            original = source = session.call("open", model, example_inputs, allow_unsafe, progress=progress, timeout=timeout)
            source_ops = session.call("source_ops", progress=progress, timeout=timeout)
            labelled = load_labelled(val_data, source.inputs, source.outputs, "val_data") if val_data is not None else None
            if train_data is not None and (steps or calibration_data is None):
                train = load_labelled(train_data, source.inputs, source.outputs, "train_data")
                calibration_data = train.x if calibration_data is None else calibration_data
                config["effective"]["calibration_data"] = "train_data" if calibration_data is train.x else "calibration_data"
            if steps:
                source, optimization = session.call(
                    "optimize", steps, train, labelled, budget_limits.max_accuracy_drop, progress=progress, timeout=timeout
                )
            fixed = fix_shapes(input_shapes, source.inputs)
            state_map = check_states(states, source.inputs, source.outputs)
            data_inputs = with_shapes(source.inputs, fixed)
            calibration = _calibration(calibration_data, data_inputs, precision_list, calibration_samples)
            if state_map and calibration:
                calibration = session.call("carry_states", calibration, state_map, progress=progress, timeout=timeout)
                config["effective"]["calibration_states"] = "carried from the reference model's previous step"
            if not calibration and validation_data is None:  # random validation inputs need the target's static shapes
                fixed = complete_static_shapes(profile, source.inputs, fixed, [])
                data_inputs = with_shapes(source.inputs, fixed)
            if validation_data is None and labelled is not None:
                validation_data = labelled.x
            validation, validation_origin = _validation(validation_data, calibration, data_inputs, validation_samples)
            labels = labelled.y[: len(validation)] if labelled is not None and validation_data is labelled.x else None
            if labels is not None:
                validation_origin = "val_data (labelled)"
            fixed = complete_static_shapes(profile, source.inputs, fixed, calibration or validation)
            checks = precheck(source_ops, profile, original, format_list, precision_list, scheme, fixed, force)
            config["compatibility"] = [report.model_dump(mode="json") for report in checks]
            config["effective"].update(validation_data=validation_origin, input_shapes=fixed, states=state_map)
            session.call("set_validation", validation, state_map, labels, progress=progress, timeout=timeout)
            baseline_accuracy = optimization.source.accuracy if optimization is not None else None
            artifacts, failures = [], []
            for fmt, prec in jobs_wanted:
                if cancel.is_set():
                    raise Cancelled("the build was cancelled", "nothing half-written was kept")
                job = RouteJob(
                    format=fmt, precision=prec, scheme=scheme, tolerances=_tolerances(prec, tolerances, profile),
                    output_dir=out, staging_dir=_job_dir(staging, fmt, prec), stem=f"{name or _default_name(model)}_{prec}",
                    calibration=calibration if prec == "int8" else [], layout=layout,
                    static_shapes=_route_shapes(profile, framework, fmt, prec, source.inputs, fixed, calibration or validation),
                )
                try:
                    if rescue_target is not None and prec == "int8":
                        artifact, record = rescue_route(
                            lambda j: session.call("build_route", j, progress=progress, timeout=timeout), job,
                            rescue_target, validation, allow_float=profile.allow_float_fallback,
                        )
                        config.setdefault("rescue", {})[job.label] = record
                    else:
                        artifact = session.call("build_route", job, progress=progress, timeout=timeout)
                    artifacts.append(finish_artifact(artifact, profile, budget_limits, baseline_accuracy))
                except Cancelled:
                    raise
                except EdgekitError as exc:
                    failures.append(RouteFailure(format=fmt, precision=prec, route=job.label, error=exc.message, hint=exc.hint))
        finally:
            session.close()
    build = Build(
        output_dir=str(out), manifest_path=str(out / MANIFEST_NAME), source=original, target=profile.name,
        artifacts=tuple(artifacts), failures=tuple(failures), optimization=optimization,
    )
    progress(ProgressEvent("manifest", 1.0, "writing the manifest"))
    write_manifest(build, config)
    return build


def _framework_of(model: Any) -> str:
    if is_in_memory(model):
        framework = framework_of_object(model)
        if framework is None:
            raise InvalidOptionError(
                f"edgekit cannot convert an object of type {type(model).__module__}.{type(model).__qualname__}",
                "pass a model file path, a Keras model, a torch.nn.Module (with example_inputs=) or an onnx.ModelProto",
            )
        return framework
    return sniff(Path(model)).framework


def _as_list(value: Sequence[str] | str | None, default: Sequence[str], what: str, allowed: Sequence[str]) -> list[str]:
    items = list(default) if value is None else [value] if isinstance(value, str) else list(value)
    if not items:
        raise InvalidOptionError(f"no {what} given", f"choose from: {', '.join(allowed)}")
    for item in items:
        if item not in allowed:
            raise InvalidOptionError(f"unknown {what} '{item}'", f"{did_you_mean(item, allowed)}choose from: {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def _routes_to_build(framework: str, formats: list[str], precisions: list[str], explicit: bool) -> list[tuple[str, str]]:
    """Every (format, precision) pair to build; unknown routes fail here, before any work."""
    if not explicit:
        formats = [f for f in formats if (framework, f) in ROUTES] or formats
    pairs = []
    for fmt in formats:
        for prec in precisions:
            if prec == "dynamic" and fmt != "tflite" and len(formats) > 1:
                continue  # dynamic-range is a TFLite scheme; other formats get the rest of the list
            find_route(framework, fmt, prec)
            pairs.append((fmt, prec))
    if not pairs:
        raise InvalidOptionError("nothing to build for these formats and precisions", "dynamic-range precision exists only for tflite")
    return pairs


def _route_shapes(profile: DeviceProfile, framework: str, fmt: str, precision: str, inputs: tuple[TensorSpec, ...],
                  fixed: dict[str, tuple[int, ...]], feeds: list) -> dict[str, tuple[int, ...]]:
    """``fixed``, completed from the data (then batch 1) when the route declares it converts static shapes only."""
    if profile.static_shapes or not find_route(framework, fmt, precision).static_shapes:
        return fixed
    return complete_static_shapes(profile.model_copy(update={"static_shapes": True}), inputs, fixed, feeds)


def _layout(layout: str | None, formats: list[str]) -> str | None:
    """``None`` (keep the source's layout) or ``"NHWC"``; NHWC is a TFLite option."""
    if layout in (None, "NCHW", "source"):
        return None
    if layout != "NHWC":
        raise InvalidOptionError(f"unknown layout '{layout}'", "choose NHWC (TFLite artifacts) or leave it out to keep the source's")
    if "tflite" not in formats:
        raise InvalidOptionError("layout='NHWC' applies to tflite artifacts and none is built", "add the tflite format")
    return layout


def _scheme(profile: DeviceProfile, overrides: Mapping[str, Any] | None) -> QuantScheme:
    if not overrides:
        return profile.quantization
    try:
        return QuantScheme.model_validate({**profile.quantization.model_dump(), **dict(overrides)})
    except ValueError as exc:
        raise InvalidOptionError(f"invalid quantization options: {exc}", f"fields: {', '.join(QuantScheme.model_fields)}") from None


def _tolerances(precision: str, overrides: Mapping[str, float] | None, profile: DeviceProfile) -> Tolerances:
    base = Tolerances.default_for(precision).model_dump()
    budgets = profile.budgets
    if budgets.min_cosine is not None:
        base["cosine"] = budgets.min_cosine
    if budgets.min_top1_agreement is not None:
        base["top1_agreement"] = budgets.min_top1_agreement
    try:
        return Tolerances.model_validate({**base, **dict(overrides or {})})
    except ValueError as exc:
        raise InvalidOptionError(f"invalid tolerances: {exc}", "give cosine= and/or top1_agreement= as numbers") from None


def _calibration(data: Any, inputs: tuple[TensorSpec, ...], precisions: list[str], limit: int) -> list:
    if data is None:
        if "int8" in precisions:
            raise DataError(
                "int8 quantization needs calibration data",
                "give calibration_data= / --calibration: an array, a .npy/.npz file, an image folder or an iterable of batches",
            )
        return []
    return load_feeds(data, inputs, what="calibration", limit=limit)


def _validation(data: Any, calibration: list, inputs: tuple[TensorSpec, ...], limit: int) -> tuple[list, str]:
    if data is not None:
        return load_feeds(data, inputs, what="validation", limit=limit), "validation_data"
    if calibration:
        return calibration[:limit], "calibration_data"
    return synthetic_feeds(inputs, SYNTHETIC_VALIDATION_SAMPLES), "synthetic (standard normal)"


def _job_dir(staging: Path, fmt: str, precision: str) -> Path:
    path = staging / f"{fmt}-{precision}"
    path.mkdir()
    return path


def _default_name(model: Any) -> str:
    return "model" if is_in_memory(model) else Path(model).name.split(".")[0] or "model"
