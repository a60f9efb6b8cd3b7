"""Profiling fidelity: edgekit's median latency against the runtimes' own benchmark tools, side by side.

On a MobileNetV2-sized model (Keras 3, random weights: fine for timing) converted to TFLite fp32 and
OpenVINO IR fp32, each round runs, pinned to one core with ``taskset`` and one thread on both sides:
``edgekit profile`` against ``litert-benchmark`` (ai-edge-litert) for TFLite, and against
``benchmark_app -api sync -nstreams 1 -infer_precision f32`` (OpenVINO) for the IR. Rounds alternate
the two tools so that drifts in machine load hit both. The harness overhead is the median time of the
timing loop around an empty call, as a share of the model's median; for OpenVINO also the wall time of
edgekit's call minus the runtime's own ``request.latency`` (binding and loop together). Results go to
bench/results/profile_fidelity.json.

    .venv/bin/python bench/profile_fidelity.py [--rounds 3] [--runs 300] [--core 1] [--artifacts DIR]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "profile_fidelity.json"
BIN = Path(sys.executable).parent

MAKE = """
import sys, numpy as np, keras, edgekit
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
path = sys.argv[1] + "/mobilenet_v2.keras"
model.save(path)
edgekit.convert(path, formats=["tflite", "openvino"], precision="fp32", output_dir=sys.argv[1] + "/build",
                validation_data=np.zeros((2, 224, 224, 3), np.float32))
"""


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return done.stdout


def edgekit_median(artifact: Path, core: int, runs: int, warmup: int, out: Path) -> dict:
    _run(["taskset", "-c", str(core), str(BIN / "edgekit"), "profile", str(artifact), "--threads", "1", "--runs", str(runs),
          "--min-time", "0", "--warmup", str(warmup), "--op-runs", "0", "--json", str(out)])
    result = json.loads(out.read_text())["results"][0]
    return {"median_ms": result["median_ms"], "runs": result["runs"],
            "ci95_ms": [result["median_ci_low_ms"], result["median_ci_high_ms"]]}


def litert_median(artifact: Path, core: int, runs: int, warmup: int, out: Path) -> dict:
    stdout = _run(["taskset", "-c", str(core), str(BIN / "litert-benchmark"), "--model", str(artifact), "--num_threads", "1",
                   "--num_runs", str(runs), "--warmup_runs", str(warmup), "--result_json", str(out)])
    data = json.loads(out.read_text())
    median = _find_median(data)
    if median is None:
        raise RuntimeError(f"no median in litert-benchmark's JSON: {data}\n{stdout[-1000:]}")
    return {"median_ms": median, "runs": runs}


def _find_median(data) -> float | None:
    """The median latency in ms from litert-benchmark's result JSON (its keys differ between versions)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if "median" in key.lower() and isinstance(value, (int, float)):
                return float(value) / (1000.0 if key.lower().endswith("_us") else 1.0)
        for value in data.values():
            found = _find_median(value)
            if found is not None:
                return found
    return None


def benchmark_app_median(artifact: Path, core: int, runs: int, warmup: int, out: Path) -> dict:
    """benchmark_app on the IR as it is (dynamic batch) with batch-1 data, as edgekit runs it."""
    stdout = _run(["taskset", "-c", str(core), str(BIN / "benchmark_app"), "-m", str(artifact), "-d", "CPU", "-api", "sync",
                   "-nthreads", "1", "-nstreams", "1", "-hint", "none", "-infer_precision", "f32", "-niter", str(runs),
                   "-data_shape", "[1,224,224,3]"])
    match = re.search(r"Median:\s+([0-9.]+)\s*ms", stdout)
    if match is None:
        raise RuntimeError(f"no median in benchmark_app's output:\n{stdout[-1500:]}")
    return {"median_ms": float(match.group(1)), "runs": runs}


def harness_overhead_ms() -> float:
    """Median time the timing loop adds per call (measured around an empty call)."""
    from edgekit.profiling.protocol import Settings, measure

    timing = measure(lambda: None, Settings(warmup_runs=100, min_runs=100_000, min_seconds=0.5, max_runs=1_000_000),
                     deadline=time.monotonic() + 60)
    return statistics.median(timing.latencies_ms)


def openvino_call_overhead_ms(artifact: Path, core: int, runs: int) -> dict:
    """Wall time of edgekit's lean OpenVINO call minus the runtime's own ``request.latency`` (its binding's
    overhead plus the timing loop's), pinned to ``core`` in this process."""
    import os

    import numpy as np

    from edgekit.data import synthetic_feeds
    from edgekit.formats.runner import open_runner

    os.sched_setaffinity(0, {core})
    runner = open_runner(artifact, "openvino", threads=1)
    prepared = runner.prepare(synthetic_feeds(runner.inputs, 1)[0])
    walls, inner = [], []
    for index in range(runs + 20):
        start = time.perf_counter_ns()
        runner.run_prepared(prepared)
        wall = (time.perf_counter_ns() - start) / 1e6
        if index >= 20:
            walls.append(wall)
            inner.append(runner.request.latency)
    gap = float(np.median(np.asarray(walls) - np.asarray(inner)))
    return {"wall_minus_runtime_ms": gap, "share_of_median": gap / float(np.median(walls))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--core", type=int, default=1)
    parser.add_argument("--artifacts", type=Path, help="A folder from an earlier run (model + build/) to reuse.")
    args = parser.parse_args()
    work = args.artifacts or Path(tempfile.mkdtemp(prefix="edgekit-fidelity-"))
    build = work / "build"
    if not (build / "edgekit-manifest.json").exists():
        work.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-c", MAKE, str(work)])
    manifest = json.loads((build / "edgekit-manifest.json").read_text())
    paths = {a["format"]: build / Path(a["path"]).name for a in manifest["artifacts"]}
    pairs = {"tflite": ("litert-benchmark", litert_median), "openvino": ("benchmark_app", benchmark_app_median)}
    results: dict = {"model": "keras.applications.MobileNetV2(weights=None), 224x224x3, fp32",
                     "settings": {"threads": 1, "taskset_core": args.core, "runs": args.runs, "warmup": args.warmup,
                                  "rounds": args.rounds}, "formats": {}}
    scratch = Path(tempfile.mkdtemp(prefix="edgekit-fidelity-out-"))
    for fmt, (tool, native) in pairs.items():
        ours, theirs = [], []
        for index in range(args.rounds):
            first, second = (edgekit_median, native) if index % 2 == 0 else (native, edgekit_median)
            a = first(paths[fmt], args.core, args.runs, args.warmup, scratch / f"{fmt}_{index}_a.json")
            b = second(paths[fmt], args.core, args.runs, args.warmup, scratch / f"{fmt}_{index}_b.json")
            mine, other = (a, b) if first is edgekit_median else (b, a)
            ours.append(mine["median_ms"])
            theirs.append(other["median_ms"])
            print(fmt, f"round {index}: edgekit {mine['median_ms']:.3f} ms, {tool} {other['median_ms']:.3f} ms", flush=True)
        ratios = [o / t for o, t in zip(ours, theirs)]
        results["formats"][fmt] = {
            "native_tool": tool, "edgekit_median_ms": ours, "native_median_ms": theirs, "ratio_per_round": ratios,
            "median_ratio": statistics.median(ratios), "within_5_percent": abs(statistics.median(ratios) - 1) <= 0.05,
        }
    overhead = harness_overhead_ms()
    fastest = min(min(v["edgekit_median_ms"]) for v in results["formats"].values())
    results["harness_overhead_ms_per_call"] = overhead
    results["harness_overhead_share_of_fastest_model"] = overhead / fastest
    results["openvino_call_overhead"] = openvino_call_overhead_ms(paths["openvino"], args.core, args.runs)
    shutil.rmtree(scratch, ignore_errors=True)
    results["artifacts"] = str(work)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({f: {k: v[k] for k in ("median_ratio", "within_5_percent")} for f, v in results["formats"].items()}
                     | {"harness_overhead_share": results["harness_overhead_share_of_fastest_model"]}, indent=2))


if __name__ == "__main__":
    main()
