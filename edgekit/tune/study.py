"""The Optuna study of a tune run: stored in SQLite in the tune folder, resumable, seeded.

The study's own attributes hold what makes a resumed run the same search (the model's hash, objectives,
constraints, seed and the search space); each trial's attributes hold its configuration and, once it ends, its
record. Trials left running by a run that was killed are closed as failed ("interrupted") when the study is
opened again, and their configuration is asked again first (its build, if it finished, comes from the cache).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.tune.front import OBJECTIVES, TrialRecord
from edgekit.tune.space import SearchSpace, TrialConfig

STUDY_FILE = "study.db"
STUDY_NAME = "edgekit-tune"
_WORST = {"minimize": 1e15, "maximize": -1.0}  # the values a failed trial is told with


class Study:
    """An Optuna study with edgekit's trial records (ask/tell: trials are measured by tasks elsewhere)."""

    def __init__(self, folder: Path, identity: dict[str, Any], objectives: tuple[str, ...], seed: int) -> None:
        from edgekit.dependencies import install_line, require

        require(("optuna",), install_line("tune"), "edgekit tune")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.path = folder / STUDY_FILE
        storage = optuna.storages.RDBStorage(f"sqlite:///{self.path}")
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)
        self.objectives = objectives
        self.study = optuna.create_study(
            study_name=STUDY_NAME, storage=storage, sampler=sampler, load_if_exists=True,
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

    def close_interrupted(self) -> list[int]:
        """Trials a killed run left running: failed with the reason, their configuration asked again first."""
        from optuna.trial import TrialState

        closed = []
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
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
        return self.study.ask()

    def tell(self, trial: Any, record: TrialRecord, constraints: list[float]) -> None:
        """Close ``trial`` with ``record``. A measured trial gives its values and constraint values; a failed one is
        told to the sampler as complete with the worst values and every constraint broken, so that it learns to
        avoid the configuration (a FAIL state would be ignored and the same configuration proposed again)."""
        trial.set_user_attr("record", record.model_dump(mode="json"))
        measured = record.state in ("complete", "duplicate") and bool(record.values)
        trial.set_constraint("failed", 0.0 if measured else 1.0)
        for index, value in enumerate(constraints):
            trial.set_constraint(f"c{index}", value if measured else 1.0)
        values = [record.values[o] if measured else _WORST[OBJECTIVES[o]] for o in self.objectives]
        self.study.tell(trial, values)

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


def identity_of(**values: Any) -> dict[str, Any]:
    """The settings a resumed study must share with the one it continues, as JSON values."""
    return json.loads(json.dumps(values, sort_keys=True, default=str))
