"""``edgekit.convert``: one call from a model to validated artifacts and a manifest.

A build is: plan (``edgekit.plan``: every option checked before any work) -> prepare the source and its data
in a session (``edgekit.session``, in a worker process for model files) -> one job per planned route ->
publish (the manifest, written last).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit import holdout, limits
from edgekit.calibration_report import manifest_summary
from edgekit.compat.gate import complete_static_shapes, finish_artifact, precheck, rejudge_size
from edgekit.contract.build import build_contract, stamp_build
from edgekit.contract.schema import Contract
from edgekit.data import Feed, load_feeds
from edgekit.dataset import labelled_validation
from edgekit.errors import Cancelled, EdgekitError
from edgekit.manifest import MANIFEST_NAME, write_manifest
from edgekit.messages import (
    BuildRoute,
    CarryStates,
    FixInputs,
    InputHints,
    ListSourceOps,
    Message,
    OpenSource,
    Optimize,
    ReferenceClasses,
    SetValidation,
)
from edgekit.optimize.labelled import LabelledData, load_labelled
from edgekit.optimize.report import OptimizationReport
from edgekit.optimize.steps import Step
from edgekit.output_kinds import check_declared
from edgekit.plan import (
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_VALIDATION_SAMPLES,
    BuildInputs,
    BuildOptions,
    BuildPlan,
    PlannedRoute,
    make_plan,
)
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.rescue import allowed_remedies, rescue_route
from edgekit.session import RouteJob
from edgekit.shapes import check_states, fix_shapes, with_shapes
from edgekit.sources import is_in_memory
from edgekit.sources.fixed import without_fixed
from edgekit.specs import Artifact, Build, ModelSource, RouteFailure
from edgekit.transaction import BuildTransaction
from edgekit.worker import InProcessSession, WorkerSession, failure_record

Call = Callable[[Message], Any]


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
    rescue: bool | None = None,
    rescue_budget_s: float | None = None,
    optimizations: Sequence[Step] | str | Path | None = None,
    train_data: Any = None,
    val_data: Any = None,
    memory_budget: int | str | None = None,
    graph_limits: Mapping[str, int] | None = None,
    input_values: Mapping[str, Any] | None = None,
    validate_on_calibration: bool = False,
    allow_inconclusive: bool = False,
    output_kinds: Mapping[str, str] | None = None,
    layout: str | None = None,
    float_layers: Sequence[str] = (),
    contract: Any = None,
) -> Build:
    """Convert ``model`` for ``target`` into every asked format and precision, validate each artifact, write a manifest.

    ``model`` is a path (.keras, .h5, SavedModel folder, TorchScript .pt, .pt2, .onnx) or an in-memory Keras model,
    ``torch.nn.Module`` (with ``example_inputs``) or ``onnx.ModelProto``. Formats and precision default to the
    target profile's. Options are checked before any work (``edgekit.plan``), all problems in one error; limits are
    checked before anything is allocated (``memory_budget``, ``graph_limits``; ``timeout`` per step, scaled by model
    size by default, 0 for none: ``edgekit.limits``). Model files load in a worker process (``isolate``), in-memory
    models in this one. The output folder is replaced as a whole, atomically, when the build ends
    (``edgekit.transaction``). Artifacts that fail validation are kept and marked failed; routes that produce
    nothing are in ``Build.failures`` with their full error and log. ``input_shapes`` fixes dynamic dimensions;
    ``input_values`` ({"sr": 16000}, ONNX) folds inputs fixed to constants into the graph; ``states`` ({state input:
    output}) validates the feeds as one sequence. The model is checked against the target first (``edgekit.check``):
    a broken hard limit refuses the build unless ``force``. ``budgets`` override the profile's and are judged per
    artifact. Without ``validation_data`` an int8 build holds part of its calibration data out (``edgekit.holdout``)
    unless ``validate_on_calibration``; every verdict is passed, failed or inconclusive by its confidence intervals
    (``edgekit.verdict``; ``allow_inconclusive`` lets ``Build.accepted`` take inconclusive ones), each output judged
    by its kind (``output_kinds`` overrides the guess). int8 routes rescue themselves (``edgekit.rescue``) towards
    ``accuracy_target`` or, where the profile allows float fallback, the int8 tolerances, within
    ``rescue_budget_s``, unless ``rescue=False``. ``optimizations`` (``edgekit.prune``/``distill``/``qat`` steps or
    a recipe file) run in order on ``train_data`` before conversion, each measured on ``val_data``.
    ``layout="NHWC"``: TFLite I/O in NHWC where the source is NCHW. ``float_layers``: layers kept float in int8
    (names as ``edgekit.debug`` reports them). ``contract`` (file, mapping or ``Contract``): completed, checked and
    written into each artifact (``edgekit.contract``). Every option is described on its ``BuildOptions`` field.
    """
    options = BuildOptions.of(locals())
    inputs = BuildInputs(model, example_inputs, calibration_data, validation_data, train_data, val_data, optimizations)
    plan, inputs = make_plan(inputs, options)
    progress = progress or ignore
    cancel = cancel or threading.Event()
    with BuildTransaction(plan.output_dir) as txn:
        session = WorkerSession(txn.work_dir, cancel) if plan.isolate else InProcessSession()
        try:
            call = _caller(session, progress, plan.timeout)
            prepared = prepare(call, plan, inputs, txn.work_dir)
            artifacts, failures = run_jobs(call, plan, prepared, txn, cancel, session.save_log)
        finally:
            session.close()
        build = publish(plan, prepared, artifacts, failures, txn, progress)
        txn.commit()
    return txn.published(build)


@dataclass
class Prepared:
    """The source as loaded (and optimized), its data, and what the build learned doing it (manifest ``run``)."""

    original: ModelSource
    source: ModelSource
    optimization: OptimizationReport | None
    calibration: list[Feed] = field(default_factory=list)
    validation: list[Feed] = field(default_factory=list)
    fixed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    contract: Contract | None = None  # the build's deployment contract, written into every artifact


def prepare(call: Call, plan: BuildPlan, inputs: BuildInputs, staging: Path) -> Prepared:
    """Open the source, run the optimization steps, load and check the data, and set the reference outputs."""
    from edgekit.optimize.plan import save_for_worker

    model, steps = inputs.model, list(plan.optimizations)
    if plan.isolate and is_in_memory(model) and steps:
        model, steps = save_for_worker(model, steps, staging)
    original = source = call(OpenSource(model, inputs.example_inputs, plan.options.allow_unsafe))
    source_ops, input_hints = call(ListSourceOps()), call(InputHints())
    labelled = load_labelled(inputs.val_data, source.inputs, source.outputs, "val_data") if inputs.val_data is not None else None
    calibration_data, validation_data, optimization, run = inputs.calibration_data, inputs.validation_data, None, {}
    if labelled is None and not plan.options.input_values:  # labelled validation data: accuracy is measured too
        labelled = labelled_validation(validation_data, source.inputs, source.outputs)
        if labelled is not None:
            validation_data, run["validation_labels"] = None, "validation_data"
    if inputs.train_data is not None and (steps or calibration_data is None):
        train = load_labelled(inputs.train_data, source.inputs, source.outputs, "train_data")
        calibration_data = train.x if calibration_data is None else calibration_data
        run["calibration_data"] = "train_data" if calibration_data is train.x else "calibration_data"
    if steps:
        source, optimization = call(Optimize(steps, train, labelled, plan.budgets.max_accuracy_drop))
    if plan.options.input_values:
        values = plan.options.input_values
        source, run["folded_inputs"] = call(FixInputs(dict(values), fix_shapes(plan.options.input_shapes, source.inputs)))
        source_ops = call(ListSourceOps())
        calibration_data, validation_data = (without_fixed(d, set(values)) for d in (calibration_data, validation_data))
    prepared = Prepared(original, source, optimization, run=run)
    _load_data(call, plan, prepared, calibration_data, validation_data, labelled)
    prepared.contract = build_contract(plan, prepared.original, prepared.calibration, prepared.validation, prepared.run,
                                       input_hints)
    checks = precheck(source_ops, plan.profile, original, plan.formats, plan.precisions, plan.scheme, prepared.fixed,
                      plan.options.force)
    run["compatibility"] = [report.model_dump(mode="json") for report in checks]
    return prepared


def _load_data(call: Call, plan: BuildPlan, prepared: Prepared, calibration_data: Any, validation_data: Any,
               labelled: LabelledData | None) -> None:
    """Calibration and validation feeds checked against the source's inputs (shapes fixed, states carried)."""
    options, source = plan.options, prepared.source
    fixed = fix_shapes(options.input_shapes, source.inputs)
    state_map = check_states(options.states, source.inputs, source.outputs)
    data_inputs = with_shapes(source.inputs, fixed)
    limits.check_feed_budget(data_inputs, limits.MIN_FEEDS_HELD, plan.memory_budget)
    calibration = [] if calibration_data is None else load_feeds(
        calibration_data, data_inputs, what="calibration", limit=options.calibration_samples)
    if state_map and calibration:
        calibration = call(CarryStates(calibration, state_map))
        prepared.run["calibration_states"] = "carried from the reference model's previous step"
    if not calibration and validation_data is None:  # random validation inputs need the target's static shapes
        fixed = complete_static_shapes(plan.profile, source.inputs, fixed, [])
        data_inputs = with_shapes(source.inputs, fixed)
        limits.check_feed_budget(data_inputs, limits.MIN_FEEDS_HELD, plan.memory_budget)
    if validation_data is None and labelled is not None:
        validation_data = labelled.x
    kinds = check_declared(options.output_kinds, source.outputs)
    held = holdout.choose(
        validation_data, calibration, data_inputs, options.validation_samples, calibrates="int8" in plan.precisions,
        sequence=bool(state_map), on_calibration=options.validate_on_calibration,
        classes=lambda feeds: call(ReferenceClasses(feeds, kinds)),
    )
    calibration, validation, origin = held.calibration, held.validation, held.origin
    warning = limits.calibration_warning(len(calibration), plan.precisions)
    if warning:
        prepared.run["warnings"] = [warning]
    prepared.run["data_split"], prepared.run["data"] = held.record, manifest_summary(calibration, held.record)
    labels = labelled.y[: len(validation)] if labelled is not None and validation_data is labelled.x else None
    if labels is not None:
        origin = prepared.run.get("validation_labels", "val_data")
    prepared.fixed = complete_static_shapes(plan.profile, source.inputs, fixed, calibration or validation)
    prepared.calibration, prepared.validation = calibration, validation
    prepared.run.update(validation_data=origin, input_shapes=prepared.fixed, states=state_map)
    context = {"kinds": kinds, "data_origin": origin, "on_calibration": held.on_calibration}
    call(SetValidation(validation, state_map, labels, context))


def run_jobs(call: Call, plan: BuildPlan, prepared: Prepared, txn: BuildTransaction, cancel: threading.Event,
             save_log: Callable[[Path, EdgekitError], Path]) -> tuple[list[Artifact], list[RouteFailure]]:
    """Build, validate and judge every planned route; a route that produces nothing becomes a failure, its full
    error and the worker's log kept under ``logs/`` in the build."""
    artifacts, failures = [], []
    baseline = prepared.optimization.source.accuracy if prepared.optimization is not None else None
    for planned in plan.jobs:
        if cancel.is_set():
            raise Cancelled("the build was cancelled", "nothing half-written was kept")
        job = _route_job(plan, planned, prepared, txn.build_dir, txn.work_dir)
        try:
            if plan.rescue and job.precision == "int8":
                artifact, record = rescue_route(
                    lambda j: call(BuildRoute(j)), job, plan.accuracy_target or job.tolerances, prepared.validation,
                    allowed=allowed_remedies(plan.profile, plan.framework, job.format), budget_s=plan.options.rescue_budget_s,
                )
                prepared.run.setdefault("rescue", {})[job.label] = record
            else:
                artifact = call(BuildRoute(job))
            artifacts.append(finish_artifact(artifact, plan.profile, plan.budgets, baseline))
        except Cancelled:
            raise
        except EdgekitError as exc:
            log = save_log(txn.build_dir / "logs" / f"{job.format}-{job.precision}.log", exc)
            failures.append(failure_record(exc, job.label, Path(txn.final_path(log))))
    return artifacts, failures


def _route_job(plan: BuildPlan, planned: PlannedRoute, prepared: Prepared, out: Path, staging: Path) -> RouteJob:
    job_dir = staging / f"{planned.format}-{planned.precision}"
    job_dir.mkdir()
    return RouteJob(
        format=planned.format, precision=planned.precision, scheme=plan.scheme, tolerances=plan.tolerances[planned.precision],
        output_dir=out, staging_dir=job_dir, stem=f"{plan.name}_{planned.precision}",
        calibration=prepared.calibration if planned.precision == "int8" else [], layout=plan.layout,
        static_shapes=_route_shapes(plan, planned, prepared),
        float_layers=plan.options.float_layers if planned.precision == "int8" else (),
    )


def _route_shapes(plan: BuildPlan, planned: PlannedRoute, prepared: Prepared) -> dict[str, tuple[int, ...]]:
    """The fixed input shapes, completed from the data (then batch 1) for a route that converts static shapes only."""
    if plan.profile.static_shapes or not planned.static_shapes:
        return prepared.fixed
    profile = plan.profile.model_copy(update={"static_shapes": True})
    return complete_static_shapes(profile, prepared.source.inputs, prepared.fixed, prepared.calibration or prepared.validation)


def publish(plan: BuildPlan, prepared: Prepared, artifacts: list[Artifact], failures: list[RouteFailure],
            txn: BuildTransaction, progress: ProgressCallback) -> Build:
    """The ``Build`` and its manifest (``config`` = the plan serialised + what the run learned), written last into
    the transaction's build folder (published as a whole by ``txn.commit()``)."""
    out, warning = txn.build_dir, (prepared.run.get("warnings") or [None])[0]
    artifacts = [rejudge_size(a, plan.budgets)
                 for a in stamp_build(artifacts, prepared.contract, plan.manifest_config(), out, prepared.run)]
    build = Build(
        output_dir=str(out), manifest_path=str(out / MANIFEST_NAME), source=prepared.original, target=plan.target,
        artifacts=tuple(txn.relocate(limits.noted(a, warning)) for a in artifacts), failures=tuple(failures),
        optimization=prepared.optimization, allow_inconclusive=plan.options.allow_inconclusive,
    )
    progress(ProgressEvent("manifest", 1.0, "writing the manifest"))
    write_manifest(build, {"plan": plan.manifest_config(), "run": prepared.run})
    return build


def _caller(session: InProcessSession | WorkerSession, progress: ProgressCallback, timeout: float | None) -> Call:
    return lambda message: session.call(message, progress=progress, timeout=timeout)
