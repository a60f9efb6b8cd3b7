"""edgekit.tune(..., executor="ray") end to end on real local Ray (loopback only): the real search, its builds as
Ray tasks on CPU nodes, its measurements as Ray tasks pinned to the node holding the device, compared with the
local executor for the same seed: batch-synchronous ask/tell makes the whole search the same (accuracy and size as
the objectives, so that what the sampler is told does not depend on the machine's load)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import edgekit

TINY = {"formats": ["onnx"], "threads": [1, 2], "runs": 10, "min_seconds": 0.1, "warmup": 2, "seed": 3, "trials": 10,
        "batch": 4, "objectives": ("accuracy", "size"), "constraints": {"min_accuracy": 0.9}}


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    from tune_models import make_mlp

    return make_mlp(tmp_path_factory.mktemp("tune-ray-model"))


@pytest.fixture(scope="module")
def local_run(mlp, tmp_path_factory):
    out = tmp_path_factory.mktemp("tune-local") / "build"
    return edgekit.tune(mlp["model"], calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                        output_dir=out, executor="local", **TINY)


def _proposed(result) -> list[str]:
    return [r.config.label() for r in sorted(result.trials, key=lambda r: r.number)]


def _check_study(result, local, lost: int = 0, trials: int = TINY["trials"]) -> None:
    everything = [r for r in result.trials if r.state != "duplicate"]
    ended = [r for r in everything if r.state == "complete"]
    assert len(everything) == trials + lost and len(ended) == trials, [r.reason for r in everything]
    for record in ended:
        m = record.measurement
        assert m.device == "local:cpu" and m.runs >= 10 and m.confidence >= 0.95
        assert 0 < m.ci_low_ms <= m.median_ms <= m.ci_high_ms < 1000
        assert record.build.validation in ("passed", "inconclusive") and record.values["accuracy"] >= 0.9
    assert result.front and {r.number for r in result.front} <= {r.number for r in ended}
    assert [(r.config.format, r.config.precision) for r in result.trials[:2]] == [("onnx", "fp32"), ("onnx", "int8")]
    if lost:  # a failed trial is told: the batches after it search from another history; the first is the same
        assert _proposed(result)[:TINY["batch"]] == _proposed(local)[:TINY["batch"]]
    else:  # the whole search: every proposal (past TPE's 8 seeded startup trials) and the front
        assert _proposed(result) == _proposed(local) and len(result.trials) > 8
        assert sorted(r.number for r in result.front) == sorted(r.number for r in local.front)
    assert result.space == local.space  # the same divergence trace, so the same float-layer sets
    # the same builds: byte-identical artifacts for the same configurations
    by_key = {r.build.key: r.build.sha256 for r in local.trials if r.build}
    assert all(by_key[r.build.key] == r.build.sha256 for r in ended if r.build.key in by_key)


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_edgekit_tune_executor_ray_on_a_local_ray_matches_the_local_executor(mlp, local_run, tmp_path):
    from edgekit.tune.report import TuneResult

    argv = [sys.executable, "-m", "edgekit.cli", "tune", str(mlp["model"]), "--executor", "ray", "--parallel", "2",
            "-c", str(mlp["calibration"]), "--validation", str(mlp["validation"]), "--out", str(tmp_path / "build"),
            "--format", "onnx", "--threads", "1", "--threads", "2", "--runs", "10", "--min-time", "0.1", "--warmup", "2",
            "--seed", str(TINY["seed"]), "--trials", str(TINY["trials"]), "--batch", "4", "--objective", "accuracy",
            "--objective", "size", "--constraint", "min_accuracy=0.9", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = TuneResult.model_validate_json(done.stdout)
    _check_study(result, local_run)
    assert "Traceback" not in done.stderr


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_tune_on_a_two_node_cluster_builds_on_the_head_and_measures_on_the_device_node(ray_head, mlp, local_run, tmp_path):
    # the head has the only CPU and no device; the other node holds local:cpu and no CPU: every build ran on
    # the head and every measurement on the device node, or the study could not have completed. No node holds
    # the device "bench-gone": the one trial sent to it fails, the device leaves the pool, the study goes on.
    node = ray_head.join(["local:cpu"], num_cpus=0, log=tmp_path / "device-node.log")
    try:
        result = edgekit.tune(mlp["model"], calibration_data=mlp["calibration"], validation_data=mlp["validation"],
                              output_dir=tmp_path / "build", executor="ray", address=ray_head.address, parallel=2,
                              devices=["local:cpu", "bench-gone"], **{**TINY, "trials": 5})
    finally:
        node.stop()
    _check_study(result, local_run, lost=1, trials=4)
    failed = [r for r in result.trials if r.state == "failed"]
    assert len(failed) == 1 and failed[0].measurement.device == "bench-gone" and failed[0].build.status == "built"
    assert failed[0].reason.startswith("device gone (bench-gone): measure task failed: ClusterError: task measure_trial "
                                       "cannot run: no live node of the Ray cluster holds 'bench-gone'")
    assert set(result.lost_devices) == {"bench-gone"}


@pytest.mark.loopback_netns
@pytest.mark.slow
def test_the_int8_rescue_runs_as_a_ray_task_and_gives_the_same_float_sets(digits, tmp_path):
    """The planted-outlier CNN's plain int8 misses min_cosine: the rescue whose curve makes the float-layer sets
    runs as a Ray task (through the CLI on a local Ray) and walks the same curve as with the local executor."""
    from tune_models import make_outlier_cnn

    from edgekit.tune.report import TuneResult

    cnn = make_outlier_cnn(tmp_path / "cnn", digits)
    search = {"formats": ["onnx"], "threads": [1], "runs": 10, "min_seconds": 0.1, "warmup": 2, "seed": 3, "trials": 3,
              "batch": 2, "objectives": ("accuracy", "size"), "constraints": {"min_cosine": 0.99999}}
    local = edgekit.tune(cnn["model"], calibration_data=cnn["calibration"], validation_data=cnn["validation"],
                         output_dir=tmp_path / "local", executor="local", **search)
    argv = [sys.executable, "-m", "edgekit.cli", "tune", str(cnn["model"]), "--executor", "ray", "-c", str(cnn["calibration"]),
            "--validation", str(cnn["validation"]), "--out", str(tmp_path / "ray"), "--format", "onnx", "--threads", "1",
            "--runs", "10", "--min-time", "0.1", "--warmup", "2", "--seed", "3", "--trials", "3", "--batch", "2",
            "--objective", "accuracy", "--objective", "size", "--constraint", "min_cosine=0.99999", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = TuneResult.model_validate_json(done.stdout)
    curve, expected = result.rescue["onnx"], local.rescue["onnx"]
    # the same builds, the same numbers (3 or 4 points: tests/test_tune_rescue.py)
    points = len(curve.points)
    assert curve.points == expected.points and points in (3, 4) and curve.met
    assert curve.points[0].cosine < 0.5 and curve.points[-1].cosine >= 0.99999
    assert result.space == local.space and len(result.space.formats["onnx"].float_sets) == 2
    assert any(n.startswith(f"onnx: float-layer sets from the rescue curve ({points} points") for n in result.notes)
    assert [r.config.label() for r in result.trials] == [r.config.label() for r in local.trials]


def test_a_node_that_cannot_see_the_tune_files_says_so(mlp, tmp_path):
    from edgekit.errors import ClusterError
    from edgekit.plan_file import DataFile
    from edgekit.tune.runner import Sources
    from edgekit.tune.space import TrialConfig
    from edgekit.tune.tasks import (
        BuildRequest,
        MeasureRequest,
        RescueRequest,
        TraceRequest,
        build_trial,
        measure_trial,
        rescue_curve,
        trace_culprits,
    )

    elsewhere = tmp_path / "not-mounted-here"
    sources = Sources(model=DataFile.of(mlp["model"]), calibration=None, validation=DataFile.of(mlp["validation"]),
                      options={"target": "cpu-x86", "name": "mlp"}, cache_dir=str(elsewhere))
    plan = sources.plan(TrialConfig(format="onnx", precision="fp32", threads=1))
    outcome = build_trial(BuildRequest(plan=plan, cache_dir=str(elsewhere)))
    assert outcome.status == "failed" and outcome.artifact is None and not elsewhere.exists()  # nothing made there
    assert outcome.reason.startswith(f"the tune cache folder {elsewhere} is not visible on node ")
    assert "mount the tune folder, the model and its data at the same path" in outcome.reason
    measured = measure_trial(MeasureRequest(artifact=str(elsewhere / "model.onnx")))
    assert measured.status == "failed" and not measured.device_gone
    assert measured.reason.startswith(f"the artifact {elsewhere / 'model.onnx'} is not visible on node ")
    rescued = rescue_curve(RescueRequest(plan=sources.plan(TrialConfig(format="onnx", precision="int8"), rescue=True),
                                         cache_dir=str(elsewhere)))
    assert rescued.points == () and rescued.reason.startswith(f"the tune cache folder {elsewhere} is not visible on node ")
    with pytest.raises(ClusterError, match="the fp32 artifact .* is not visible on node") as caught:
        trace_culprits(TraceRequest(artifact=str(mlp["model"]), reference=str(elsewhere / "a.onnx"), data=str(mlp["validation"])))
    assert "shared file system" in caught.value.hint
