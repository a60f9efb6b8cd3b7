"""The trial loop, batch-synchronous so that a seed gives the same search on any executor at any parallelism:
ask Optuna for a batch of ``batch`` configurations, build each as one task and measure it on a free device as
another (at most ``parallel`` trials in flight), wait for the whole batch, then tell the study in trial-number
order. What the sampler knows when it proposes a trial is the batches before it, never which trials happened to
end first. Every task goes through the ``TrialExecutor``; a trial that fails (route error, validation failure,
executor error, device gone) is told as failed with its reason and the study goes on. A device that cannot be
reached is taken out of the pool: only the trial it was measuring is lost. A trial of the batch that never
started (a cancel, every device gone) is closed without a record and its configuration asked again first.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ClusterError
from edgekit.plan import BuildOptions
from edgekit.plan_file import DataFile, PlanFile
from edgekit.progress import ProgressCallback, ProgressEvent
from edgekit.tune.executor import TrialExecutor, device_resource
from edgekit.tune.front import TrialRecord, constraint_values, values_of, violations_of
from edgekit.tune.space import SearchSpace, TrialConfig, suggest
from edgekit.tune.study import Study
from edgekit.tune.tasks import (
    BuildOutcome,
    BuildRequest,
    Measurement,
    MeasureRequest,
    build_dir_of,
    build_trial,
    describe,
    measure_trial,
)

MAX_REPEATS = 40  # configurations already tried, proposed in a row, before the search is taken as exhausted


@dataclass(frozen=True)
class Measuring:
    """How each trial is measured (the profiling protocol's settings) and where."""

    devices: tuple[str, ...]
    device_profile: str | None
    runs: int = 50
    min_seconds: float = 1.0
    warmup: int = 10
    token: str | None = None
    timeout: float = 300.0

    def request(self, artifact: str, device: str, threads: int) -> MeasureRequest:
        return MeasureRequest(artifact=artifact, device=device, device_profile=self.device_profile, threads=threads,
                              runs=self.runs, min_seconds=self.min_seconds, warmup=self.warmup, token=self.token,
                              timeout=self.timeout)


@dataclass(frozen=True)
class Sources:
    """The model and data every trial builds from, and the options every build shares."""

    model: DataFile
    calibration: DataFile | None
    validation: DataFile | None
    options: dict[str, Any]  # BuildOptions fields shared by all trials (target, input shapes, tolerances, ...)
    cache_dir: str

    def plan(self, config: TrialConfig, **extra: Any) -> PlanFile:
        """The plan of one configuration, its output folder the cache folder named by its key; ``extra``: other
        ``BuildOptions`` (a trial builds without the int8 rescue, ``edgekit.tune.prime`` runs it with ``rescue=True``)."""
        options = BuildOptions.of({**self.options, "formats": (config.format,), "precision": (config.precision,),
                                   "quantization": config.quantization or None, "float_layers": config.float_layers,
                                   "rescue": False, **extra})
        plan = PlanFile(model=self.model, calibration_data=self.calibration, validation_data=self.validation, options=options)
        folder = build_dir_of(self.cache_dir, plan.key)
        return plan.model_copy(update={"options": options.model_copy(update={"output_dir": str(folder)})})


@dataclass
class _Item:
    """One trial of a batch: what it builds, and once it ended, its record and constraint values."""

    trial: Any
    config: TrialConfig
    plan: PlanFile
    original: _Item | None = None  # an earlier trial of the batch with the same configuration
    record: TrialRecord | None = None

    @property
    def ident(self) -> tuple[str, int]:
        return self.plan.key, self.config.threads


@dataclass
class Loop:
    """One run of the trial loop (state of the tasks in flight)."""

    study: Study
    space: SearchSpace
    executor: TrialExecutor
    sources: Sources
    measuring: Measuring
    constraints: dict[str, float]
    parallel: int = 1
    batch: int = 4
    progress: ProgressCallback = lambda event: None
    on_trial: Callable[[TrialRecord], None] = lambda record: None
    cancel: threading.Event = field(default_factory=threading.Event)
    free: list[str] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)  # device -> why it was taken out of the pool
    builds: dict[Future, _Item] = field(default_factory=dict)
    waiting: list[tuple[_Item, BuildOutcome]] = field(default_factory=list)  # built, waiting for a device
    measures: dict[Future, tuple[_Item, BuildOutcome, str]] = field(default_factory=dict)
    seen: dict[tuple[str, int], TrialRecord] = field(default_factory=dict)  # (build key, threads) -> the trial that ended
    repeats: int = 0  # duplicates proposed in a row
    notes: list[str] = field(default_factory=list)

    def run(self, trials: int) -> None:
        """Run batches until ``trials`` trials have ended in the study (counting those of earlier runs), or cancel."""
        self.free = [d for d in self.measuring.devices if d not in self.lost]
        for record in self.study.records():
            self._remember(record)
        while (not self.cancel.is_set() and len(self.lost) < len(self.measuring.devices) and self.repeats < MAX_REPEATS
               and self.study.finished() < trials):
            items = self._ask_batch(min(self.batch, trials - self.study.finished()))
            if not items:
                break
            self._run_batch(items)
            self._tell_batch(items)
        if self.repeats >= MAX_REPEATS:
            self.notes.append(f"the sampler proposed {MAX_REPEATS} configurations in a row that were already tried "
                              f"({len(self.seen)} distinct tried of a space of {self.space.size()}): the search stopped there")

    def _ask_batch(self, size: int) -> list[_Item]:
        """``size`` new configurations (a duplicate of an ended trial is told at once and not counted)."""
        items: list[_Item] = []
        while sum(item.original is None for item in items) < size and self.repeats < MAX_REPEATS:
            trial = self.study.ask()
            config = suggest(trial, self.space)
            trial.set_user_attr("config", config.model_dump(mode="json"))
            item = _Item(trial, config, self.sources.plan(config))
            if item.ident in self.seen:
                self._duplicate(trial, config, self.seen[item.ident])
                continue
            item.original = next((other for other in items if other.ident == item.ident), None)
            self.repeats = self.repeats + 1 if item.original is not None else 0
            items.append(item)
        return items

    def _run_batch(self, items: list[_Item]) -> None:
        """Build and measure the batch's new configurations, at most ``parallel`` trials in flight."""
        todo = [item for item in items if item.original is None]
        while True:
            while todo and not self.cancel.is_set() and len(self.lost) < len(self.measuring.devices) and \
                    len(self.builds) + len(self.waiting) + len(self.measures) < self.parallel:
                building = {item.plan.key for item in self.builds.values()}
                item = next((item for item in todo if item.plan.key not in building), None)  # one build per key
                if item is None:
                    break
                todo.remove(item)
                self._submit_build(item)
            self._measure_waiting()
            futures = [*self.builds, *self.measures]
            if not futures:
                return
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                if future in self.builds:
                    self._built(future)
                else:
                    self._measured(future)

    def _tell_batch(self, items: list[_Item]) -> None:
        """Tell the study every trial of the batch in trial-number order; those that never started (and twins of a
        trial whose failure does not stand, such as a lost device) are asked again."""
        for item in sorted(items, key=lambda item: item.trial.number):
            if item.original is not None and item.ident in self.seen:  # its twin, told just before it, stands
                self._duplicate(item.trial, item.config, self.seen[item.ident], counted=False)
            elif item.record is not None:
                self.study.tell_ended(item.trial.number, item.record)
                self._remember(item.record)
            else:
                self.study.put_back(item.trial)

    def _duplicate(self, trial: Any, config: TrialConfig, original: TrialRecord, counted: bool = True) -> None:
        """A configuration that already ended: told with the same result, not built or measured again, not counted."""
        if counted:
            self.repeats += 1
        record = original.model_copy(update={"number": trial.number, "config": config, "state": "duplicate",
                                             "reason": f"duplicate of trial {original.number}: not built or measured again"})
        bounds = (constraint_values(original.build, original.measurement, self.constraints)
                  if original.state == "complete" and original.build and original.measurement else [])
        self.study.tell(trial, record, bounds)

    def _remember(self, record: TrialRecord) -> None:
        """Configurations whose result stands: measured ones, and builds that failed (a route or validation failure)."""
        build = record.build
        if build is not None and (record.state == "complete" or (record.state == "failed" and build.status == "failed")):
            self.seen.setdefault((build.key, record.config.threads), record)

    def _submit_build(self, item: _Item) -> None:
        self.study.started(item.trial)
        self.progress(ProgressEvent("tune:build", 0.0, f"trial {item.trial.number}: building {item.config.label()}"))
        future = self.executor.submit(build_trial, BuildRequest(plan=item.plan, cache_dir=self.sources.cache_dir))
        self.builds[future] = item

    def _built(self, future: Future) -> None:
        item = self.builds.pop(future)
        try:
            outcome = future.result()
        except Exception as exc:  # the executor's failure (a lost worker, a node gone): this trial only
            self._finish(item, "failed", f"build task failed: {describe(exc)}")
            return
        if outcome.status != "built" or outcome.artifact is None:
            self._finish(item, "failed", outcome.reason or "no artifact", build=outcome)
            return
        self.waiting.append((item, outcome))

    def _measure_waiting(self) -> None:
        while self.waiting and self.free:
            item, outcome = self.waiting.pop(0)
            device = self.free.pop(0)
            self.progress(ProgressEvent("tune:measure", 0.0, f"trial {item.trial.number}: measuring on {device}"))
            request = self.measuring.request(outcome.artifact, device, item.config.threads)
            future = self.executor.submit(measure_trial, request, resources={device_resource(device): 1})
            self.measures[future] = (item, outcome, device)
        if not self.free and not self.measures:  # every device is gone: what waits cannot be measured
            while self.waiting:
                item, outcome = self.waiting.pop(0)
                self._finish(item, "failed", "no device left to measure on: "
                             + "; ".join(f"{d}: {why}" for d, why in self.lost.items()), build=outcome)

    def _measured(self, future: Future) -> None:
        item, outcome, device = self.measures.pop(future)
        try:
            measurement: Measurement = future.result()
        except Exception as exc:  # a ClusterError: no node holds the device any more, or its node died with the task
            measurement = Measurement(status="failed", device=device, reason=f"measure task failed: {describe(exc)}",
                                      device_gone=isinstance(exc, ClusterError))
        if measurement.device_gone:
            self.lost[device] = measurement.reason or "unreachable"
        else:
            self.free.append(device)
        if measurement.status != "complete":
            prefix = f"device gone ({device})" if measurement.device_gone else f"measurement failed on {device}"
            self._finish(item, "failed", f"{prefix}: {measurement.reason}", build=outcome, measurement=measurement)
            return
        values = values_of(outcome, measurement)
        missing = [name for name in self.study.objectives if values.get(name) is None]
        if missing:
            self._finish(item, "failed", f"not measured: {', '.join(missing)}", build=outcome, measurement=measurement)
            return
        bounds = constraint_values(outcome, measurement, self.constraints)
        record = TrialRecord(number=item.trial.number, config=item.config, state="complete", build=outcome,
                             measurement=measurement, values={k: v for k, v in values.items() if v is not None},
                             violations=violations_of(self.constraints, bounds))
        self._ended(item, record, bounds)

    def _finish(self, item: _Item, state: str, reason: str, build: BuildOutcome | None = None,
                measurement: Measurement | None = None) -> None:
        record = TrialRecord(number=item.trial.number, config=item.config, state=state, reason=reason, build=build,
                             measurement=measurement)
        self._ended(item, record, [1.0] * len(self.constraints))

    def _ended(self, item: _Item, record: TrialRecord, bounds: list[float]) -> None:
        """A trial ended: its record is kept (and shown) now, told to the sampler with its batch."""
        item.record = record
        self.study.ended(item.trial, record, bounds)
        self.on_trial(record)
