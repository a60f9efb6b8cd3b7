"""edgekit tune against the best single `edgekit convert` configuration, measured side by side in one run.

For each model (the bundled digits CNN, Keras 3; zoo models from ``bench/zoo_models.py`` with ``--zoo``; a zoo
model that is a PyTorch state dict, such as mtcnn-pnet, is exported to ONNX once with ``torch.onnx.export`` and
that file is tuned, since a tune trial loads its model from a file in a worker):

1. ``edgekit.tune(model, target="cpu-x86", trials=N, constraints={"min_accuracy": A})``: every trial a real
   build, validated against the source, profiled on this machine (the profiling protocol: warm-up, timed
   runs, the median with its 95% interval).
2. ``edgekit.convert`` with the options a user gives (every format of the profile at fp32 and int8, the
   default scheme, rescue on): the "single convert" configurations, each profiled the same way.
3. The fastest feasible point (on the front or not), with the feasible points the study could not order
   against it (ranking intervals overlapping), and the fastest single-convert artifact that meets it, measured
   again alternately ``--rounds`` times (each tune point at its own thread count, the convert artifact at one), so
   all see the same machine state; the fastest tune candidate is compared with the convert artifact: the ratio of
   their medians and whether their intervals overlap are reported.

Results: bench/results/tune.json (after each model; a model run again replaces its entry, the others are kept,
each entry says when and at which commit it ran), bench/results/tune.png (latency vs accuracy per model: every
trial, the front, the single-convert artifacts).

    .venv/bin/python bench/tune.py [--trials 30] [--zoo ppocr-cls,mtcnn-pnet] [--skip-digits] [--rounds 3] [--min-accuracy 0.98]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = Path(__file__).parent / "results" / "tune.json"
PLOT = RESULTS.with_suffix(".png")


def digits_model(work: Path) -> dict[str, Any]:
    from digits_demo import digits_split, train_classifier

    x_train, x_test, y_train, _ = digits_split()
    model = train_classifier(x_train, y_train, work / "digits.keras")
    np.save(work / "digits_cal.npy", x_train[:300])
    np.save(work / "digits_val.npy", x_test)
    return {"name": "digits-cnn (Keras 3)", "model": model, "calibration": work / "digits_cal.npy",
            "validation": work / "digits_val.npy", "input_shapes": None}


def zoo_model(name: str, work: Path) -> dict[str, Any]:
    from zoo_models import MODELS, Source, fetch

    entry = MODELS[name]
    path = fetch(entry)
    source = Source(entry, path)
    if entry.kind.startswith("torch-"):
        path = _as_onnx(source, entry.make_data(source, 1, "calibration")[0], work / f"{name}.onnx")
    arrays = {}
    for which, count in (("calibration", 128), ("evaluation", 200)):
        feeds = entry.make_data(source, count, which)
        if len(feeds[0]) != 1:
            raise SystemExit(f"{name}: the bench takes single-input models")
        arrays[which] = np.concatenate([next(iter(f.values())) for f in feeds])
    np.save(work / f"{name}_cal.npy", arrays["calibration"])
    np.save(work / f"{name}_val.npy", arrays["evaluation"])
    return {"name": name, "model": path, "calibration": work / f"{name}_cal.npy", "validation": work / f"{name}_val.npy",
            "input_shapes": entry.input_shapes or None}


def _as_onnx(source: Any, feed: dict[str, np.ndarray], out: Path) -> Path:
    """A zoo model that is a torch module, exported to one ONNX file (the tune's trials load a file)."""
    import onnx
    import torch

    if out.is_file():  # a kept work folder: the same file, so that the study there resumes
        return out
    example = tuple(torch.from_numpy(feed[name]) for name in source.input_names)
    torch.onnx.export(source.framework_model.eval(), example, str(out), input_names=source.input_names,
                      output_names=source.output_names, dynamo=True, external_data=False)
    onnx.checker.check_model(str(out))
    return out


def measure(artifact: str, runs: int, threads: int = 1) -> dict[str, float]:
    import edgekit

    result = edgekit.profile(artifact, device_profile="cpu-x86", threads=threads, runs=runs, min_seconds=1.0, warmup=10,
                             op_profile_runs=0).results[0]
    return {"median_ms": result.median_ms, "ci_low_ms": result.median_ci_low_ms, "ci_high_ms": result.median_ci_high_ms}


def single_converts(spec: dict[str, Any], work: Path, min_accuracy: float) -> list[dict[str, Any]]:
    """What `edgekit convert` builds for cpu-x86 at fp32 and int8 (rescue on), each artifact profiled."""
    import edgekit

    build = edgekit.convert(spec["model"], target="cpu-x86", precision=["fp32", "int8"], calibration_data=spec["calibration"],
                            validation_data=spec["validation"], output_dir=work / "convert", input_shapes=spec["input_shapes"])
    rows = []
    for artifact in build.artifacts:
        v = artifact.validation
        accuracy = v.top1_agreement if v.top1_agreement is not None else v.cosine
        rows.append({"format": artifact.format, "precision": artifact.precision, "artifact": artifact.path,
                     "size_bytes": artifact.size_bytes, "validation": v.status, "accuracy": accuracy,
                     "meets_budget": v.status != "failed" and accuracy is not None and accuracy >= min_accuracy,
                     **measure(artifact.path, 100)})
    return rows


def tie_set(result: Any, limit: int = 4) -> list[Any]:
    """The fastest feasible point and the feasible configurations the study could not order against it (ranking
    intervals overlapping; ``edgekit.tune.front.fastest``): one measurement each, under whatever load the machine
    had then, so they are all measured again side by side. Lowest study median first, at most ``limit``."""
    from edgekit.tune.front import fastest

    best, tied = fastest(list(result.trials))
    return sorted([best, *tied], key=lambda r: r.values["latency"])[:limit] if best else []


def head_to_head(candidates: list[Any], convert: str, rounds: int) -> dict[str, Any]:
    """The tune candidates (each at its own thread count) and the convert artifact (one thread, as `edgekit
    profile` runs it by default) measured alternately, ``rounds`` times each; medians of the per-round medians.
    The tune side is the candidate with the lowest of those medians."""
    found: dict[str, list[dict[str, float]]] = {str(c.number): [] for c in candidates} | {"convert": []}
    for _ in range(rounds):
        for c in candidates:
            found[str(c.number)].append(measure(c.build.artifact, 200, c.config.threads))
        found["convert"].append(measure(convert, 200))
    medians = {k: statistics.median(m["median_ms"] for m in v) for k, v in found.items()}
    chosen = min((str(c.number) for c in candidates), key=medians.__getitem__)
    pairs = zip(found[chosen], found["convert"])
    overlap = [t["ci_low_ms"] <= c["ci_high_ms"] and c["ci_low_ms"] <= t["ci_high_ms"] for t, c in pairs]
    return {"candidates": [{"trial": c.number, "config": c.config.label(), "median_ms": medians[str(c.number)]}
                           for c in candidates],
            "chosen_trial": int(chosen), "rounds": {"tune": found[chosen], "convert": found["convert"]},
            "tune_median_ms": medians[chosen], "convert_median_ms": medians["convert"],
            "speedup": medians["convert"] / medians[chosen], "intervals_overlap_in_rounds": sum(overlap)}


def run_model(spec: dict[str, Any], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import edgekit

    started = time.monotonic()
    result = edgekit.tune(spec["model"], target="cpu-x86", trials=args.trials, constraints={"min_accuracy": args.min_accuracy},
                          calibration_data=spec["calibration"], validation_data=spec["validation"], seed=args.seed,
                          output_dir=work / "tuned", input_shapes=spec["input_shapes"], runs=50, min_seconds=1.0)
    tune_seconds = round(time.monotonic() - started, 1)
    front = result.front
    summary = result.summary()
    converts = single_converts(spec, work, args.min_accuracy)
    best_convert = min((c for c in converts if c["meets_budget"]), key=lambda c: c["median_ms"], default=None)
    best_tune = result.trial(summary["fastest"]) if summary["fastest"] is not None else None
    record = {
        "model": spec["name"], "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _commit(),
        "batch": result.batch, "tune_seconds": tune_seconds, "trials": summary, "space_size": result.space_size,
        "notes": list(result.notes), "study": result.study,
        "every_trial": [{"trial": r.number, "config": r.config.label(), "state": r.state, "reason": r.reason,
                         "latency_ms": r.values.get("latency"), "interval": r.interval, "accuracy": r.values.get("accuracy"),
                         "size_bytes": r.build.size_bytes if r.build else None, "on_front": r in front} for r in result.trials],
        "single_converts": converts, "best_convert": best_convert,
        "study_fastest": best_tune.number if best_tune else None, "best_tune": _point(best_tune),
    }
    if best_tune and best_convert:
        h2h = head_to_head(tie_set(result), best_convert["artifact"], args.rounds)
        chosen = result.trial(h2h["chosen_trial"])
        record.update(head_to_head=h2h, best_tune=_point(chosen), why=why(record | {"head_to_head": h2h}, chosen))
    return record


def _point(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"trial": record.number, "config": record.config.label(), "artifact": record.build.artifact,
            "threads": record.config.threads, "accuracy": record.values["accuracy"], "size_bytes": record.build.size_bytes}


def _commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def why(record: dict[str, Any], best: Any) -> str:
    h2h, convert = record["head_to_head"], record["best_convert"]
    tied = h2h["intervals_overlap_in_rounds"]
    verdict = "faster than" if h2h["speedup"] > 1.0 and not tied else "as fast as (tied with)" if tied else "slower than"
    from edgekit.tune.front import LATENCY_STEP

    within = "within" if max(h2h["speedup"], 1 / h2h["speedup"]) < LATENCY_STEP else "beyond"
    others = [c for c in h2h["candidates"] if c["trial"] != best.number]
    ties = (f" It was chosen by measuring side by side the {len(others) + 1} feasible points the study could not order "
            f"(ranking intervals overlapping its fastest): " + ", ".join(f"trial {c['trial']} {c['median_ms']:.4f} ms"
                                                                        for c in h2h["candidates"]) + ".") if others else ""
    return (f"the tune point (trial {best.number}: {best.config.label()}) is {verdict} the best single convert artifact "
            f"({convert['format']} {convert['precision']}): {h2h['tune_median_ms']:.4f} ms vs {h2h['convert_median_ms']:.4f} ms "
            f"(x{h2h['speedup']:.2f}, {within} the quarter octave the front ranks latency by; intervals overlap in {tied} of "
            f"{len(h2h['rounds']['tune'])} rounds). The single convert "
            "configurations are points of the tune space (the study starts with fp32 and plain int8 of every format), so "
            "the front can only add faster points: other thread counts, schemes (per-tensor, int16, calibration) and "
            "precisions (fp16, dynamic-range int8) the convert defaults do not try, kept only when they meet the accuracy "
            "budget. Per round the two medians: " + ", ".join(f"{t['median_ms']:.4f} vs {c['median_ms']:.4f}" for t, c in
                                                       zip(h2h["rounds"]["tune"], h2h["rounds"]["convert"])) + " ms." + ties)


def plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for ax, record in zip(axes[0], results):
        for row in record["every_trial"]:
            if row["latency_ms"] is None or row["state"] != "complete":
                continue
            low, high = row["interval"]
            color = "tab:green" if row["on_front"] else "tab:blue"
            ax.errorbar(row["latency_ms"], row["accuracy"], xerr=[[row["latency_ms"] - low], [high - row["latency_ms"]]],
                        fmt="o", color=color, ms=6 if row["on_front"] else 4, alpha=0.8)
        for row in record["single_converts"]:
            ax.plot(row["median_ms"], row["accuracy"], "x", color="tab:red", ms=9)
            ax.annotate(f"{row['format']} {row['precision']}", (row["median_ms"], row["accuracy"]), fontsize=7)
        ax.set_title(f"{record['model']}: front (green), trials (blue), convert (red x)", fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("latency, median ms (log scale; 1 thread unless the trial says)")
        ax.set_ylabel("accuracy (top-1 agreement or cosine)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--zoo", default="", help="comma-separated zoo models (bench/zoo_models.py), e.g. ppocr-cls")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-accuracy", type=float, default=0.98)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: a temporary one); run again with "
                        "the same folder to resume a study a killed run left, its builds cached")
    args = parser.parse_args()
    from edgekit.quiet import native_stderr, quiet_framework_env

    quiet_framework_env(False)
    stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"models": []}
    earlier = [{"trials_asked": stored.get("trials"), "min_accuracy": stored.get("min_accuracy"), "seed": stored.get("seed"),
                **m} for m in stored["models"]]  # entries written before each carried its own settings
    results: list[dict[str, Any]] = []
    kept = contextlib.nullcontext(str(args.work)) if args.work else tempfile.TemporaryDirectory(prefix="edgekit-bench-tune-")
    with kept as tmp, native_stderr(False):
        names = ([] if args.skip_digits else ["digits"]) + [n for n in args.zoo.split(",") if n]
        for name in names:
            work = Path(tmp) / name
            work.mkdir(parents=True, exist_ok=True)
            spec = digits_model(work) if name == "digits" else zoo_model(name, work)
            results.append({"trials_asked": args.trials, "min_accuracy": args.min_accuracy, "seed": args.seed,
                            **run_model(spec, work, args)})
            mine = {r["model"] for r in results}
            models = [*[m for m in earlier if m["model"] not in mine], *results]
            RESULTS.write_text(json.dumps({"target": "cpu-x86", "models": models}, indent=2, default=str) + "\n")
            plot(models)
            print(results[-1].get("why", f"{name}: no comparison (no point met the budget)"), flush=True)


if __name__ == "__main__":
    main()
