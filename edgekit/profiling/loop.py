"""The measurement protocol run against a :class:`~edgekit.formats.runner.Runner`: the one code path of every
profile, local or remote.

A local run calls it in a fresh child process with a runner of this machine (:mod:`edgekit.profiling.local`);
a run on a device calls it with an :class:`~edgekit.formats.agent.AgentRunner`, whose timed loop, memory and
per-op profile happen on the device (:mod:`edgekit.agent.host`). Events are the same either way: ``progress``,
``part`` (``load``, ``timing``, ``memory``, ``accuracy``, ``ops``) as each phase ends, then ``done``.
"""
from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import Cancelled, ContractError, DataError

if TYPE_CHECKING:
    from edgekit.formats.runner import Runner
    from edgekit.profiling.local import Event, Job

Opener = Callable[[bool], "Runner"]  # profile_ops -> an open runner
MAX_OUTPUT_BYTES = 16 << 20  # outputs sent back for parity are capped


def run_protocol(open_runner: Opener, job: Job, emit: Callable[[Event], None], *, affinity: tuple[int, ...] | None = None,
                 baseline_rss: int | None = None, cancel: threading.Event | None = None) -> None:
    """Measure ``job``'s artifact with the runners ``open_runner`` gives: load, timed runs, memory, accuracy on
    the job's dataset, per-op profile; every phase is emitted as it ends, so an error keeps what came before."""
    from edgekit.data import synthetic_feeds

    settings = job.settings
    deadline = time.monotonic() + 0.8 * settings.timeout_seconds  # stop timing before the parent kills us
    emit({"event": "progress", "stage": "load", "fraction": 0.0, "message": "loading the model"})
    start = time.perf_counter()
    runner = open_runner(False)
    try:
        load_ms = runner.load_ms if runner.load_ms is not None else (time.perf_counter() - start) * 1000
        emit({"event": "part", "name": "load", "value": {
            "load_ms": load_ms, "runtime": runner.runtime, "accelerator": runner.accelerator,
            "executed_precision": runner.executed_precision, "threads": settings.threads, "affinity": affinity,
            "baseline_rss_bytes": runner.baseline_rss_bytes if runner.baseline_rss_bytes is not None else baseline_rss}})
        dataset, dataset_error = None, None
        if job.dataset:
            from edgekit.contract.stamp import read_for_run
            from edgekit.profiling.accuracy import load_labelled

            try:
                dataset = load_labelled(Path(job.dataset), runner.inputs, read_for_run(Path(job.path), job.format))
            except ContractError:
                raise  # a feed that breaks the artifact's contract is refused: nothing is measured
            except DataError as exc:  # timing still runs (on generated inputs); the error ends the job after it
                dataset_error = exc
        feed = dataset[0][0] if dataset else synthetic_feeds(runner.inputs, 1)[0]
        prepared = runner.prepare(feed)

        def progress(fraction: float, message: str, stage: str = "timing") -> None:  # a device may say "queued"
            emit({"event": "progress", "stage": stage, "fraction": fraction, "message": message})

        timing = runner.measure(prepared, settings, deadline, progress)
        emit({"event": "part", "name": "timing", "value": timing.model_dump(mode="json")})
        emit({"event": "part", "name": "memory", "value": {"peak_rss_bytes": runner.peak_rss_bytes()}})
        if dataset_error is not None:
            raise dataset_error
        if dataset:
            _check(cancel, job)
            emit({"event": "progress", "stage": "accuracy", "fraction": 0.0, "message": f"{len(dataset[1])} samples"})
            emit({"event": "part", "name": "accuracy", "value": _accuracy_value(runner, dataset, job)})
    finally:
        runner.close()
    if settings.op_profile_runs and time.monotonic() < deadline:
        _check(cancel, job)
        emit({"event": "progress", "stage": "ops", "fraction": 0.0, "message": "per-operation profile"})
        del runner
        profiled = open_runner(True)
        try:
            ops = profiled.op_profile(profiled.prepare(feed), settings.op_profile_runs)
            emit({"event": "part", "name": "ops", "value": _ops_value(ops, profiled)})
        finally:
            profiled.close()
    emit({"event": "done"})


def _check(cancel: threading.Event | None, job: Job) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"profiling {Path(job.path).name} was cancelled", "nothing of this run was kept")


def _accuracy_value(runner: Runner, dataset: tuple[list, np.ndarray], job: Job) -> dict[str, Any]:
    from edgekit.profiling.accuracy import evaluate

    accuracy, output, outputs = evaluate(runner, *dataset)
    value: dict[str, Any] = {"dataset": Path(job.dataset).name, "samples": len(dataset[1]), "accuracy": accuracy,
                             "output": output}
    if job.return_outputs and outputs.nbytes <= MAX_OUTPUT_BYTES:
        buffer = io.BytesIO()
        np.save(buffer, outputs, allow_pickle=False)
        value["outputs"] = base64.b64encode(buffer.getvalue()).decode()
    return value


def _ops_value(ops: list[dict[str, Any]] | None, runner: Runner) -> dict[str, Any]:
    if ops is None:
        return {"ops": [], "note": runner.op_profile_note
                or f"{runner.runtime} does not expose per-operation times through its Python API"}
    total = sum(o["ms"] for o in ops) or 1.0
    ranked = sorted(ops, key=lambda o: o["ms"], reverse=True)
    return {"ops": [dict(o, share=o["ms"] / total) for o in ranked], "note": None}
