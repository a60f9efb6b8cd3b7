"""The job process's side of the Tune view (run by :mod:`edgekit.gui.job`): ``edgekit.tune`` with every ended
trial streamed, and ``edgekit.select_trial`` to promote a point."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edgekit.gui.jobs import Cancelled, Progress, PromoteRequest, Result, Trial, TuneRequest


def run_tune(request: TuneRequest, send: Callable[[Any], None], cancel: threading.Event) -> None:
    """Run (or resume) the study; a cancel ends the trial in flight, keeps the study and answers ``cancelled``."""
    import edgekit

    s = request.settings

    def on_result(result: Any) -> None:
        ended = result.trials[-1].number if result.trials else -1
        send(Trial(number=ended, result=result.model_dump(mode="json")))

    result = edgekit.tune(
        s.model, target=s.target, objectives=tuple(s.objectives), constraints=s.constraints, trials=s.trials, seed=s.seed,
        formats=s.formats or None, calibration_data=s.calibration_data or None, validation_data=s.validation_data or None,
        output_dir=s.output_dir, runs=s.runs, min_seconds=s.min_seconds,
        progress=lambda event: send(Progress(stage=event.stage, fraction=event.fraction, message=event.message)),
        on_result=on_result, cancel=cancel,
    )
    if cancel.is_set():
        send(Cancelled(message="stopped: the ended trials are kept in the study"))
    else:
        send(Result(data=result.model_dump(mode="json")))


def run_promote(request: PromoteRequest, send: Callable[[Any], None], cancel: threading.Event) -> None:
    """Publish the trial's build as the build folder (one atomic swap)."""
    import edgekit

    build = edgekit.select_trial(request.trial, request.output_dir)
    send(Result(data=build.model_dump(mode="json")))
