"""Tune scale-out on Ray: 20 trial-like builds on a local two-node Ray cluster versus one after the other.

Each trial is a real ``edgekit.convert`` of the digits example (a configuration of format, precision and
calibration samples, as a tune trial would ask), returning its artifact's size, sha256 and parity. The same 20
trials run once sequentially in this process's executor (edgekit.tune.executor.LocalExecutor, one worker) and once
through RayExecutor on a cluster of two one-CPU nodes (`ray start --head` + `edgekit ray-node`), in the same run.
The wall-time ratio (Ray / sequential), where each trial ran, and whether both runs produced the same artifacts go
to bench/results/tune_ray.json. The cluster lives in a loopback-only network namespace (bench/loopback_netns.py:
root on Linux) so that Ray talks to nothing but 127.0.0.1.

With ``--search`` it runs the real search instead: ``edgekit.tune`` of a small ONNX classifier
(tests/tune_models.py) for N trials with the local executor (one trial at a time) and with ``executor="ray"`` on
two one-CPU nodes (the second holding the device ``local:cpu``, two trials in flight), same seed, in the same run;
the wall-time ratio, the proposed configurations and whether both fronts are the same go to
bench/results/tune_ray_search.json.

    .venv/bin/python bench/tune_ray.py [--trials 20]
    .venv/bin/python bench/tune_ray.py --search [--trials 8]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tune_ray.json"
SEARCH_RESULTS = HERE / "results" / "tune_ray_search.json"
INSIDE = "EDGEKIT_BENCH_NETNS"
CONFIGS = [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8"), ("tflite", "fp32")]
CALIBRATION = (50, 100, 150, 200)


def trial(number: int, model: bytes, calibration: np.ndarray, validation: np.ndarray) -> dict:
    """One trial-like build: convert the model for one configuration; what it made and where it ran."""
    import edgekit

    fmt, precision = CONFIGS[number % len(CONFIGS)]
    samples = CALIBRATION[(number // len(CONFIGS)) % len(CALIBRATION)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-trial-") as folder:
        source = Path(folder) / "digits.keras"
        source.write_bytes(model)
        build = edgekit.convert(source, formats=[fmt], precision=precision, calibration_data=calibration[:samples],
                                validation_data=validation, calibration_samples=samples, output_dir=Path(folder) / "out")
        artifact = build.artifacts[0] if build.artifacts else None
        made = {"sha256": artifact.sha256, "size_bytes": artifact.size_bytes, "cosine": artifact.validation.cosine,
                "verdict": artifact.verdict} if artifact else {"error": build.failures[0].error}
    return {"trial": number, "format": fmt, "precision": precision, "calibration_samples": samples, **made,
            "seconds": round(time.perf_counter() - started, 3), "node": _node()}


def _node() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()[:8] if ray.is_initialized() else "local"
    except ImportError:
        return "local"


def _run_all(executor, trials: int, *args) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    futures: list[Future] = [executor.submit(trial, number, *args) for number in range(trials)]
    results = [future.result() for future in futures]
    return time.perf_counter() - started, results


def _busy(sequential: list[dict], on_ray: list[dict], ray_s: float, nodes: int) -> dict:
    """The trials' own seconds in each run (a busy machine slows one run more than the other) and how busy the
    Ray nodes were: the sum of trial seconds over nodes x wall time (1.0: never idle)."""
    ray_sum = sum(r["seconds"] for r in on_ray)
    return {"sequential_trial_seconds_sum": round(sum(r["seconds"] for r in sequential), 2),
            "ray_trial_seconds_sum": round(ray_sum, 2), "ray_node_utilisation": round(ray_sum / (nodes * ray_s), 3)}


def bench(trials: int) -> dict:
    sys.path.insert(0, str(HERE.parent / "examples"))
    sys.path.insert(0, str(HERE))
    import local_ray
    from digits_demo import digits_split, train_classifier

    from edgekit.tune.executor import LocalExecutor
    from edgekit.tune.ray_executor import RayExecutor

    x_train, x_test, y_train, _ = digits_split()
    with tempfile.TemporaryDirectory() as folder:
        model = train_classifier(x_train, y_train, Path(folder) / "digits.keras").read_bytes()
    args = (model, x_train[:200], x_test[:60])

    local = LocalExecutor(max_workers=1)
    sequential_s, sequential = _run_all(local, trials, *args)
    local.shutdown()

    head = local_ray.Head(num_cpus=1)
    try:
        worker = head.join([], num_cpus=1)
        try:
            with RayExecutor(head.address) as executor:
                ray_s, on_ray = _run_all(executor, trials, *args)
        finally:
            worker.stop()
    finally:
        head.stop()

    nodes = sorted({r["node"] for r in on_ray})
    same = [a.get("sha256") == b.get("sha256") for a, b in zip(sequential, on_ray, strict=True)]
    return {
        "what": f"{trials} trial-like edgekit.convert builds of the digits example: two one-CPU Ray nodes vs sequential",
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "trials": trials, "configs": [f"{f} {p}" for f, p in CONFIGS], "calibration_samples": list(CALIBRATION),
        "sequential_s": round(sequential_s, 2), "ray_two_nodes_s": round(ray_s, 2),
        "ratio_ray_over_sequential": round(ray_s / sequential_s, 3),
        "trials_per_node": {node: sum(r["node"] == node for r in on_ray) for node in nodes},
        **_busy(sequential, on_ray, ray_s, len(nodes)),
        "same_artifacts": sum(same), "trials_with_artifact": sum("sha256" in r for r in sequential),
        "sequential": sequential, "ray": on_ray,
    }


SEARCH = {"formats": ["onnx", "openvino"], "threads": [1, 2], "runs": 20, "min_seconds": 0.3, "warmup": 5, "seed": 11,
          "constraints": {"min_accuracy": 0.9}}


def _summary(result, seconds: float) -> dict:
    from edgekit.tune.front import told_latency

    ended = [r for r in result.trials if r.state != "duplicate"]
    return {"wall_s": round(seconds, 2), "trials_ended": len(ended), "complete": sum(r.state == "complete" for r in ended),
            "proposed": [r.config.label() for r in result.trials],
            "front": sorted(r.config.label() for r in result.front),
            "trials": [{"number": r.number, "state": r.state, "config": r.config.label(),
                        "median_ms": r.measurement.median_ms if r.measurement else None,
                        "told_latency_ms": told_latency(r.measurement.median_ms) if r.measurement and r.measurement.median_ms
                        else None,
                        "ci_ms": [r.measurement.ci_low_ms, r.measurement.ci_high_ms] if r.measurement else None,
                        "accuracy": r.values.get("accuracy"), "size_bytes": r.values.get("size"),
                        "build_s": r.build.seconds if r.build else None} for r in result.trials]}


def compare(a: dict, b: dict) -> dict:
    """What two search summaries share: proposals (first difference), front configurations, the trials' build seconds
    (a busy machine slows one run more than the other: compare these before reading the wall-time ratio)."""
    same = min(len(a["proposed"]), len(b["proposed"]))
    differ = next((n for n in range(same) if a["proposed"][n] != b["proposed"][n]), None)
    told = [(x["told_latency_ms"], y["told_latency_ms"]) for x, y in zip(a["trials"], b["trials"])]
    told_differ = next((a["trials"][n]["number"] for n, (x, y) in enumerate(told) if x != y), None)
    builds = [round(sum(t["build_s"] or 0 for t in s["trials"] if t["state"] != "duplicate"), 2) for s in (a, b)]
    return {"same_proposals": differ is None, "first_different_proposal": differ, "same_front": a["front"] == b["front"],
            "first_trial_told_another_latency": told_differ,
            "front_configs_in_both": sorted(set(a["front"]) & set(b["front"])),
            "local_build_seconds_sum": builds[0], "ray_build_seconds_sum": builds[1]}


def search_bench(trials: int) -> dict:
    """The real search, local executor vs Ray on two one-CPU nodes, same seed."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    sys.path.insert(0, str(HERE))
    import local_ray
    from tune_models import make_mlp

    import edgekit

    with tempfile.TemporaryDirectory(prefix="edgekit-tune-ray-") as folder:
        data = make_mlp(Path(folder) / "model")
        common = {**SEARCH, "trials": trials, "calibration_data": data["calibration"], "validation_data": data["validation"]}
        started = time.perf_counter()
        local = edgekit.tune(data["model"], executor="local", parallel=1, output_dir=Path(folder) / "local", **common)
        local_s = time.perf_counter() - started
        head = local_ray.Head(num_cpus=1)
        try:
            node = head.join(["local:cpu"], num_cpus=1)
            try:
                started = time.perf_counter()
                on_ray = edgekit.tune(data["model"], executor="ray", address=head.address, parallel=2,
                                      output_dir=Path(folder) / "ray", **common)
                ray_s = time.perf_counter() - started
            finally:
                node.stop()
        finally:
            head.stop()
    a, b = _summary(local, local_s), _summary(on_ray, ray_s)
    return {
        "what": f"edgekit.tune of a small ONNX digits classifier, {trials} trials: Ray on two one-CPU nodes "
                "(2 trials in flight) vs the local executor (1 at a time), same seed, batch-synchronous (batch 4)",
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "load_average": os.getloadavg()},
        "settings": {**SEARCH, "trials": trials}, "local_s": a["wall_s"], "ray_two_nodes_s": b["wall_s"],
        "ratio_ray_over_local": round(ray_s / local_s, 3), **compare(a, b), "sampler_startup_trials": 8, "batch": on_ray.batch,
        "same_space": local.space == on_ray.space, "local": a, "ray": b,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="20 builds, or 8 trials with --search")
    parser.add_argument("--search", action="store_true", help="the real search (edgekit.tune) instead of builds")
    args = parser.parse_args(argv)
    if INSIDE not in os.environ:  # run again inside a loopback-only network namespace
        env = {**os.environ, INSIDE: "1", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
               "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
        os.execve(sys.executable, [sys.executable, str(HERE / "loopback_netns.py"), __file__, *sys.argv[1:]], env)
    if args.search:
        result = search_bench(args.trials or 8)
        SEARCH_RESULTS.parent.mkdir(exist_ok=True)
        SEARCH_RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: result[k] for k in ("local_s", "ray_two_nodes_s", "ratio_ray_over_local", "same_proposals",
                                                 "same_front", "same_space")}))
        return 0
    result = bench(args.trials or 20)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("sequential_s", "ray_two_nodes_s", "ratio_ray_over_sequential",
                                             "trials_per_node", "same_artifacts", "trials_with_artifact")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
