"""``edgekit.tune``: a multi-objective search whose trials are real builds, validated, and measured on the device."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.plan import tolerances_for
from edgekit.plan_file import DataFile
from edgekit.progress import ProgressCallback, ignore
from edgekit.tune.front import TrialRecord, check_constraints, check_objectives
from edgekit.tune.prime import Primed, accuracy_target, baselines, prime
from edgekit.tune.report import HTML_NAME, JSON_NAME, TuneResult, tune_folder
from edgekit.tune.runner import Loop, Measuring, Sources
from edgekit.tune.space import SearchSpace, base_space, params_of, thread_choices
from edgekit.tune.study import Study, identity_of
from edgekit.tune.tasks import RescueCurve


def tune(
    model: str | Path, *, target: str | Path = "cpu-x86", objectives: Sequence[str] = ("latency", "accuracy", "size"),
    constraints: Mapping[str, float] | None = None, trials: int = 30, devices: Sequence[str] = ("local:cpu",),
    executor: str = "local", address: str | None = None, seed: int = 0, calibration_data: Any = None,
    validation_data: Any = None, output_dir: str | Path = "build/edgekit", formats: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None, threads: Sequence[int] | None = None, runs: int = 50,
    min_seconds: float = 1.0, warmup: int = 10, token: str | None = None, parallel: int | None = None,
    batch: int = 4, input_shapes: Mapping[str, Sequence[int]] | None = None, tolerances: Mapping[str, float] | None = None,
    rescue_budget: float | None = None, progress: ProgressCallback | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None, on_result: Callable[[TuneResult], None] | None = None,
    cancel: threading.Event | None = None,
) -> TuneResult:
    """Search the builds of ``model`` for ``target`` for the Pareto front of ``objectives`` under ``constraints``.

    Each of ``trials`` trials is a real build (``edgekit.convert`` of one format, precision, quantization scheme
    and float-layer set), validated, then measured with the profiling protocol on one of ``devices``
    (``local:cpu`` or agents, same profile) at one thread count. The space comes from the target profile and the
    routes (``edgekit.tune.space``); an int8 format's float-layer sets are those of the int8 rescue's curve when its
    plain int8 misses ``min_cosine`` / ``min_top1`` (else the profile's int8 tolerances; ``rescue_budget`` seconds,
    None: scaled by model size, 0: off), else trace prefixes (``edgekit.tune.prime``; the notes say which, ``rescue``
    holds the curves). Optuna's multi-objective TPE sampler (``seed``) searches it with the constraints (``max_latency_ms``,
    ``min_accuracy``, ``min_cosine``, ``min_top1``, ``max_size_bytes``, ``max_peak_memory_bytes``) as its
    constraint values. The study is stored in SQLite in ``<output_dir>.tune`` (``tune_folder``): calling again
    with the same arguments resumes it up to ``trials`` ended trials; builds are cached by content hash and
    never built twice. ``executor="ray"`` (with the cluster ``address``) runs builds and measurements as Ray
    tasks, measurements pinned to the node holding each device. ``batch`` trials are asked together, run (``parallel``
    at once) and told in trial-number order when all ended: a seed gives one search on any executor. A failed
    trial (route error, validation failure, device gone) is recorded with its reason. Returns every trial and the front; writes
    ``tune.json`` and ``tune-report.html`` in the tune folder; ``select`` promotes a point to ``output_dir``.
    Each ended trial: ``on_trial(record)``, ``on_result(study so far)``. ``cancel`` set: in-flight trials end, it returns.
    """
    from edgekit.tune.choose import open_executor

    objectives = check_objectives(tuple(objectives))
    bounds = check_constraints(dict(constraints or {}))
    devices = _check_counts(trials, batch, parallel, tuple(devices))
    _check_rescue_budget(rescue_budget)
    folder = tune_folder(output_dir)
    profile, sources, space = _setup(model, target, folder, calibration_data, validation_data, formats, precisions, threads,
                                     {"input_shapes": dict(input_shapes) if input_shapes else None,
                                      "tolerances": dict(tolerances) if tolerances else None})
    rescue = {"rescue_budget": rescue_budget} if rescue_budget is not None else {}  # studies started without it resume
    identity = identity_of(model=sources.model.sha256, calibration=sources.calibration, validation=sources.validation,
                           target=profile.name, objectives=objectives, constraints=bounds, seed=seed, batch=batch,
                           base_space=space.model_dump(mode="json"), options=sources.options, **rescue)
    study = Study(folder, identity, objectives, seed)
    notes = [f"trial {n} was interrupted by an earlier run; its configuration is asked again" for n in study.close_interrupted()]
    workers = min(batch, parallel or (1 if executor == "local" else max(2, 2 * len(devices))))  # more never run
    pool = open_executor(executor, address, max_workers=workers, devices=devices)
    try:
        if study.space is None:  # once per study: a resumed one has its space, never traced or rescued again
            wanted = accuracy_target(bounds, tolerances_for("int8", sources.options["tolerances"], profile))
            _start(study, prime(pool, sources, space, wanted, rescue_budget, progress or ignore))
        measuring = Measuring(devices=devices, device_profile=str(target), runs=runs, min_seconds=min_seconds, warmup=warmup,
                              token=token)
        loop = Loop(study, study.space, pool, sources, measuring, bounds, parallel=workers, batch=batch,
                    progress=progress or ignore, cancel=cancel or threading.Event())

        def snapshot() -> TuneResult:
            result = TuneResult(
                model=sources.model.path, target=profile.name, objectives=objectives, constraints=bounds, seed=seed, batch=batch,
                study=str(study.path), folder=str(folder), output_dir=str(Path(output_dir).resolve()), space=study.space,
                space_size=study.space.size(), devices=devices, lost_devices=loop.lost, trials=tuple(study.records()),
                notes=tuple([*study.study.user_attrs.get("space_notes", []), *notes, *loop.notes]),
                rescue={f: RescueCurve.model_validate(c) for f, c in study.study.user_attrs.get("rescue_curves", {}).items()},
            )
            result.save_json(folder / JSON_NAME)  # after every trial: a live view, and what a killed run leaves
            result.save_html(folder / HTML_NAME)
            return result

        def ended(record: TrialRecord) -> None:
            result = snapshot()
            (on_trial or (lambda record: None))(record)
            (on_result or (lambda result: None))(result)

        loop.on_trial = ended
        loop.run(trials)
    finally:
        pool.shutdown(wait=True)
    return snapshot()


def _check_rescue_budget(rescue_budget: float | None) -> None:
    if rescue_budget is not None and not rescue_budget >= 0:
        raise InvalidOptionError(f"rescue_budget={rescue_budget} is not a number of seconds >= 0",
                                 "give seconds for each format's int8 rescue, 0 for none, or leave it to scale with the model")


def _start(study: Study, primed: Primed) -> None:
    """Store a new study's primed space, its notes and rescue curves, and enqueue its baseline trials."""
    study.study.set_user_attr("space_notes", primed.notes)
    study.study.set_user_attr("rescue_curves", {f: c.model_dump(mode="json") for f, c in primed.curves.items()})
    study.set_space(primed.space)
    for config in [*baselines(primed.space), *primed.rescued]:
        study.enqueue(params_of(config, primed.space))


def _check_counts(trials: int, batch: int, parallel: int | None, devices: tuple[str, ...]) -> tuple[str, ...]:
    if min(trials, batch, parallel or 1) < 1 or not devices or len(set(devices)) != len(devices):
        raise InvalidOptionError("tune needs trials, batch and parallel >= 1 and at least one device, without repeats",
                                 "e.g. trials=30, batch=4, devices=['local:cpu']")
    return devices


def _setup(model: str | Path, target: str | Path, folder: Path, calibration_data: Any, validation_data: Any,
           formats: Sequence[str] | None, precisions: Sequence[str] | None, threads: Sequence[int] | None,
           options: dict[str, Any]) -> tuple[Any, Sources, SearchSpace]:
    """The profile, the files every trial builds from (arrays saved into the tune folder) and the search space."""
    from edgekit.plan import framework_of
    from edgekit.profiles import load_profile

    if not isinstance(model, str | Path) or not Path(model).exists():
        raise InvalidOptionError(f"tune takes a model file or folder; {model!r} is not one",
                                 "save the model (.keras, .onnx, .pt2, ...) and give its path: trials load it in workers")
    profile = load_profile(target)
    framework = framework_of(model)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    sources = Sources(
        model=DataFile.of(model), calibration=_data_file(calibration_data, folder, "calibration"),
        validation=_data_file(validation_data, folder, "validation"), cache_dir=str(folder),
        options={"target": str(target), **options, "name": Path(model).name.split(".")[0] or "model"},
    )
    space = base_space(profile, framework, os.cpu_count() or 1, tuple(formats) if formats else None,
                       tuple(precisions) if precisions else None)
    if threads:
        space = space.model_copy(update={"threads": tuple(sorted(set(threads)))})
    if not space.formats:
        raise InvalidOptionError(f"no route builds a {framework} model for {profile.name} with these formats and precisions",
                                 f"the profile's formats: {', '.join(profile.formats)}")
    return profile, sources, space


def _data_file(data: Any, folder: Path, what: str) -> DataFile | None:
    """A data path as it is, or in-memory arrays saved once into the tune folder (content-hashed like a file)."""
    if data is None:
        return None
    if isinstance(data, str | Path):
        return DataFile.of(data)
    import io

    import numpy as np

    from edgekit.atomic import atomic_write_bytes

    path = folder / "data" / f"{what}.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(data), allow_pickle=False)
    if not path.is_file() or path.read_bytes() != buffer.getvalue():
        atomic_write_bytes(path, buffer.getvalue())
    return DataFile.of(path)


__all__ = ["TuneResult", "thread_choices", "tune", "tune_folder"]
