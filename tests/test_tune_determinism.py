"""The same seed gives the same search whoever runs the trials: batch-synchronous ask/tell (a batch asked, run,
and told in trial-number order when all ended), each proposal from a sampler seeded by the seed and the trial
number, and latency told to the sampler snapped to a quarter-octave grid."""
from __future__ import annotations

import math

import pytest

import edgekit
from edgekit.tune.front import LATENCY_STEP, told_latency
from edgekit.tune.space import SearchSpace

#: accuracy and size are the same in every run (byte-identical builds, the same validation data), so what the
#: sampler is told does not depend on the machine's load at all and the whole search must repeat exactly
SEARCH = {"formats": ["onnx"], "threads": [1, 2], "runs": 10, "min_seconds": 0.1, "warmup": 2, "seed": 5, "trials": 12,
          "batch": 4, "objectives": ("accuracy", "size"), "constraints": {"min_accuracy": 0.9}}


def proposed(result) -> list[str]:
    return [r.config.label() for r in sorted(result.trials, key=lambda r: r.number)]


def told(result) -> list[tuple[int, str, tuple[float, ...] | None]]:
    """Every trial of the study as Optuna holds it: number, state and the values it was told."""
    import optuna

    study = optuna.load_study(study_name="edgekit-tune", storage=f"sqlite:///{result.study}")
    return [(t.number, t.state.name, tuple(t.values) if t.values else None) for t in study.trials]


def check_same_search(result, other) -> None:
    assert proposed(result) == proposed(other)
    assert told(result) == told(other)
    assert sorted(r.number for r in result.front) == sorted(r.number for r in other.front)  # listed by latency: the
    # order may differ (a measurement), the points may not
    assert result.space == other.space
    keys = {r.build.key: r.build.sha256 for r in other.trials if r.build}
    assert all(keys[r.build.key] == r.build.sha256 for r in result.trials if r.build)


def _run(mlp, out, **options):
    events: list[str] = []
    result = edgekit.tune(mlp["model"], calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                          output_dir=out, progress=lambda e: events.append(e.stage) if e.stage == "tune:build" else None,
                          on_trial=lambda r: events.append("ended"), **{**SEARCH, **options})
    return result, events


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    from tune_models import make_mlp

    return make_mlp(tmp_path_factory.mktemp("tune-seed-model"))


@pytest.mark.slow
def test_the_same_seed_gives_the_same_proposals_and_front_at_parallel_1_and_2(mlp, tmp_path):
    one, one_events = _run(mlp, tmp_path / "p1", parallel=1)
    two, two_events = _run(mlp, tmp_path / "p2", parallel=2)
    ended = [r for r in one.trials if r.state != "duplicate"]
    assert len(ended) == SEARCH["trials"] and all(r.state == "complete" for r in ended), [r.reason for r in ended]
    # sequential: every build starts after the trial before it ended; parallel 2: two builds before the first end
    assert one_events[:3] == ["tune:build", "ended", "tune:build"] and two_events[:2] == ["tune:build", "tune:build"]
    check_same_search(two, one)
    # past the sampler's 8 seeded startup trials: the model-based proposals (batch 3) repeat too
    assert len(one.trials) >= 12 and one.front


def test_latency_is_told_on_a_quarter_octave_grid():
    assert LATENCY_STEP == pytest.approx(1.189207, rel=1e-6)
    # the grid point 2^(-13/4) = 0.105112 ms holds what is within a factor 2^(1/8) (9.05 %) of it
    grid = [told_latency(v) for v in (0.0965, 0.100, 0.105, 0.1145, 0.0962, 0.1148)]
    assert grid == [0.105112] * 4 + [0.0883883, 0.125]
    assert all(math.isclose(math.log(g, LATENCY_STEP), round(math.log(g, LATENCY_STEP)), abs_tol=1e-5) for g in grid)


def test_a_proposal_depends_on_the_seed_the_trial_number_and_what_was_told(tmp_path):
    """Two studies (two processes' worth of state: each a fresh sampler per trial) told the same values ask the
    same configurations, including after a study is closed and opened again mid-way (a resumed run)."""
    from edgekit.tune.front import TrialRecord
    from edgekit.tune.space import FormatSpace, suggest
    from edgekit.tune.study import Study

    space = SearchSpace(formats={"onnx": FormatSpace(precisions=("fp32", "fp16", "int8"), per_channel=(True, False),
                                                       calibration_methods=("minmax", "percentile", "entropy"))},
                        threads=(1, 2, 4))

    def search(folder, reopen_at: int | None = None) -> list[str]:
        labels = []
        folder.mkdir()
        study = Study(folder, {"test": 1}, ("latency", "size"), seed=9)
        for n in range(14):
            if n == reopen_at:
                study = Study(folder, {"test": 1}, ("latency", "size"), seed=9)
            trial = study.ask()
            config = suggest(trial, space)
            labels.append(config.label())
            latency = 1.0 + 0.5 * config.threads + (0.0 if config.precision == "int8" else 2.0)
            record = TrialRecord(number=trial.number, config=config, state="complete",
                                 values={"latency": latency, "size": 10.0 if config.precision == "int8" else 40.0})
            study.tell(trial, record, [])
        return labels

    first = search(tmp_path / "a")
    assert first == search(tmp_path / "b") == search(tmp_path / "c", reopen_at=9)
    assert len(set(first)) >= 5  # a real search of the space, not one configuration asked again and again
