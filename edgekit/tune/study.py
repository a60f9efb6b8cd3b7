"""The Optuna study of a tune run: stored in SQLite in the tune folder, resumable, seeded.

The study's own attributes hold what makes a resumed run the same search (the model's hash, objectives,
constraints, seed and the search space); each trial's attributes hold its configuration and, once it ends, its
record. Trials left running by a run that was killed are closed as failed ("interrupted") when the study is
opened again, and their configuration is asked again first (its build, if it finished, comes from the cache);
a trial that had ended but was not yet told (its batch had not finished) is told with its record.

Each trial is proposed by a sampler seeded from the study's seed and the trial's number, so a proposal depends
only on the seed and on what the study was told before it (not on how many proposals this process made).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.tune.front import OBJECTIVES, TrialRecord, told_values
from edgekit.tune.space import SearchSpace, TrialConfig

STUDY_FILE = "study.db"
STUDY_NAME = "edgekit-tune"
_WORST = {"minimize": 1e15, "maximize": -1.0}  # the values a failed trial is told with
STARTUP_TRIALS = 8  # TPE's seeded random proposals before it models the results


class Study:
    """An Optuna study with edgekit's trial records (ask/tell: trials are measured by tasks elsewhere)."""

    def __init__(self, folder: Path, identity: dict[str, Any], objectives: tuple[str, ...], seed: int) -> None:
        from edgekit.dependencies import install_line, require

        require(("optuna",), install_line("tune"), "edgekit tune")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.path = folder / STUDY_FILE
        storage = optuna.storages.RDBStorage(f"sqlite:///{self.path}")
        self.objectives = objectives
        self.seed = seed
        self.study = optuna.create_study(
            study_name=STUDY_NAME, storage=storage, sampler=self._sampler(0), load_if_exists=True,
            directions=[OBJECTIVES[o] for o in objectives],
        )
        self._check_identity(identity)

    def _check_identity(self, identity: dict[str, Any]) -> None:
        stored = self.study.user_attrs.get("identity")
        if stored is None:
            self.study.set_user_attr("identity", identity)
        elif stored != identity:
            changed = sorted(k for k in {*stored, *identity} if stored.get(k) != identity.get(k))
            raise InvalidOptionError(
                f"the study at {self.path} was started with other settings ({', '.join(changed)} differ)",
                "give another --out to start a new study, or the same model, data, target, objectives and seed to resume it",
            )

    @property
    def space(self) -> SearchSpace | None:
        stored = self.study.user_attrs.get("space")
        return SearchSpace.model_validate(stored) if stored is not None else None

    def set_space(self, space: SearchSpace) -> None:
        self.study.set_user_attr("space", space.model_dump(mode="json"))

    def _sampler(self, number: int) -> Any:
        """TPE seeded for trial ``number``: ``seed`` and the number hashed to 32 bits."""
        import optuna

        digest = hashlib.sha256(f"edgekit-tune:{self.seed}:{number}".encode()).digest()
        return optuna.samplers.TPESampler(seed=int.from_bytes(digest[:4], "big"), n_startup_trials=STARTUP_TRIALS)

    def close_interrupted(self) -> list[int]:
        """Trials a killed run left running: told when they had ended, closed silently (and asked again first) when
        they had not started, else failed as interrupted with the reason and their configuration asked again first."""
        from optuna.trial import TrialState

        closed = []
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            ended = frozen.user_attrs.get("record")
            if ended is not None:
                self.tell_ended(frozen.number, TrialRecord.model_validate(ended))
                continue
            if not frozen.user_attrs.get("started"):
                self._put_back(frozen.number, frozen.params)
                continue
            config = frozen.user_attrs.get("config")
            record = TrialRecord(number=frozen.number, config=TrialConfig.model_validate(config) if config else
                                 TrialConfig(format="?", precision="?"), state="interrupted",
                                 reason="interrupted: the tune run stopped while this trial ran")
            self.study.set_user_attr(f"interrupted-{frozen.number}", record.model_dump(mode="json"))
            self.study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
            if config:
                self.study.enqueue_trial(frozen.params, skip_if_exists=False)
            closed.append(frozen.number)
        return closed

    def enqueue(self, params: dict[str, Any]) -> None:
        self.study.enqueue_trial(params, skip_if_exists=True)

    def ask(self) -> Any:
        """A new trial, proposed by the sampler seeded for its number (or an enqueued configuration)."""
        self.study.sampler = self._sampler(len(self.study.get_trials(deepcopy=False)))
        return self.study.ask()

    def started(self, trial: Any) -> None:
        """The trial's build was submitted: from now on a kill leaves it interrupted, not merely unstarted."""
        trial.set_user_attr("started", True)

    def ended(self, trial: Any, record: TrialRecord, constraints: list[float]) -> None:
        """Keep an ended trial's record (listed by ``records``) and constraint values before its batch is told (the
        sampler reads them only from told trials). A measured trial gives its constraint values; a failed one has
        every constraint broken."""
        trial.set_user_attr("record", record.model_dump(mode="json"))
        measured = _measured(record)
        trial.set_constraint("failed", 0.0 if measured else 1.0)
        for index, value in enumerate(constraints):
            trial.set_constraint(f"c{index}", value if measured else 1.0)

    def put_back(self, trial: Any) -> None:
        """A trial of a batch that never started: closed without a record, its configuration asked again first."""
        self._put_back(trial.number, trial.params)

    def _put_back(self, number: int, params: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        self.study.enqueue_trial(params, skip_if_exists=False)

    def tell(self, trial: Any, record: TrialRecord, constraints: list[float]) -> None:
        """Close ``trial`` with ``record`` and its constraint values (``ended`` then ``tell_ended``)."""
        self.ended(trial, record, constraints)
        self.tell_ended(trial.number, record)

    def tell_ended(self, number: int, record: TrialRecord) -> None:
        """Tell the sampler an ended trial's values: latency as ``told_values`` snaps it; a failed trial is told as
        complete with the worst values (and broken constraints), so that it learns to avoid the configuration (a
        FAIL state would be ignored and the same configuration proposed again)."""
        told = told_values(record, self.objectives)
        measured = _measured(record)
        self.study.tell(number, [told[o] if measured else _WORST[OBJECTIVES[o]] for o in self.objectives])

    def records(self) -> list[TrialRecord]:
        """Every finished trial's record, by trial number."""
        found = [TrialRecord.model_validate(v) for k, v in self.study.user_attrs.items() if k.startswith("interrupted-")]
        for frozen in self.study.get_trials(deepcopy=False):
            record = frozen.user_attrs.get("record")
            if record is not None:
                found.append(TrialRecord.model_validate(record))
        return sorted(found, key=lambda r: r.number)

    def finished(self) -> int:
        """Trials that ended (complete or failed), not counting interrupted ones or duplicates (never built again)."""
        return sum(1 for r in self.records() if r.state in ("complete", "failed"))


def _measured(record: TrialRecord) -> bool:
    return record.state in ("complete", "duplicate") and bool(record.values)


def identity_of(**values: Any) -> dict[str, Any]:
    """The settings a resumed study must share with the one it continues, as JSON values."""
    return json.loads(json.dumps(values, sort_keys=True, default=str))
