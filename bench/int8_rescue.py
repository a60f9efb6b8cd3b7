"""int8 rescue: plain int8 vs rescued int8 vs fp32, per format, on a trained digits CNN with a known culprit.

The model (tests/debug_models.py) has an ``outlier`` dense layer with one unit scaled 1000x (the head
scaled back): the float function is unchanged, plain per-tensor int8 activations are ruined. For each
of ONNX, OpenVINO and TFLite the bench builds fp32, plain int8 and int8 with
``accuracy_target={"cosine": 0.99, "top1": 0.97}``, records cosine / top-1 agreement against the Keras
model on held-out digits, file size, median single-sample latency (one thread, the runtime's own runner),
the layers kept in float and the share of multiply-accumulates left in int8, and the culprit the trace
names for plain int8.

Then real trained models from the zoo (``bench/zoo_models.py``, fetched from PyPI wheels): the PP-OCRv4 text
detector (DB head, Sigmoid map, 256x320), silero-vad (recurrent state, ``If`` on its sample rate) and the PP-OCR
text-direction classifier, each built to fp32, plain int8 (``rescue=False``) and rescued int8 (``accuracy_target``
cosine 0.99, ``--rescue-budget`` seconds per route) for ONNX, OpenVINO and TFLite (the ONNX -> TFLite route;
a model's extra convert options, such as silero-vad's fixed sample rate, are recorded in its row),
with cosine, top-1 agreement, size, the share of multiply-accumulates left in int8 (counted in the artifact),
median latency (``edgekit.rescue_latency``: the profiling child, one thread), the remedies accepted, why the
search stopped, every candidate the rescue built with its accuracy, int8 share and latency, and the measured
sensitivity pass when the trace's attribution was uncertain. Results go to bench/results/int8_rescue.json
(written after each model, so a run cut short keeps what it measured) and the curves to int8_rescue.png.

    .venv/bin/python bench/int8_rescue.py [--runs 300] [--zoo ppocr-det,silero-vad,ppocr-cls] [--formats onnx,openvino,tflite]
        [--rescue-budget SECONDS] [--no-digits] [--merge] [--plot-only]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples"))
RESULTS = Path(__file__).parent / "results" / "int8_rescue.json"
FORMATS = ("onnx", "openvino", "tflite")
TARGET = {"cosine": 0.99, "top1": 0.97}
ZOO = ("ppocr-det", "silero-vad", "ppocr-cls")


def latency_ms(path: str, fmt: str, sample: np.ndarray, runs: int) -> float:
    """Median latency of one inference on one thread."""
    from edgekit.formats.runner import open_runner

    runner = open_runner(Path(path), fmt, threads=1)
    prepared = runner.prepare({runner.inputs[0].name: sample})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run_prepared(prepared)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--zoo", default=",".join(ZOO), help="zoo models to add (empty: none)")
    parser.add_argument("--no-digits", action="store_true", help="skip the planted digits CNN")
    parser.add_argument("--rescue-budget", type=float, default=None, help="seconds per route (default: scaled by model size)")
    parser.add_argument("--merge", action="store_true", help="keep the other zoo models of the results file, and "
                        "the formats not run of this one (re-read at each write, so runs for different models can share it)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="formats of the zoo models")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from the results file")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(RESULTS.read_text()), RESULTS.with_suffix(".png"))
        return
    results: dict = {"target": TARGET, "zoo_target": {"cosine": 0.99}, "formats": {}, "zoo": {}}
    if args.merge and RESULTS.exists():
        earlier = json.loads(RESULTS.read_text())
        results["zoo"] = earlier.get("zoo", {})
        if args.no_digits:
            results.update({k: earlier[k] for k in ("model", "formats") if k in earlier})
    formats = tuple(f for f in args.formats.split(",") if f)
    for name in [n for n in args.zoo.split(",") if n]:
        row = zoo_model(name, args.rescue_budget, formats)
        if args.merge and RESULTS.exists():  # another run may have written its models meanwhile; formats not run are kept
            zoo = json.loads(RESULTS.read_text()).get("zoo", {})
            row = {**zoo.get(name, {}), **row}
            results["zoo"] = {**zoo, name: row}
        results["zoo"][name] = row
        _write(results)
    if not args.no_digits:
        results.update(digits(args.runs))
        _write(results)
    print(json.dumps(results, indent=2))


def _write(results: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS.with_suffix(".png"))


def zoo_model(name: str, budget: float | None, formats: tuple[str, ...] = FORMATS) -> dict:
    """fp32, plain and rescued int8 of one zoo model in every format with a route from ONNX (TFLite through the
    ONNX -> TFLite route), each with its median latency; the rescue's curve with every candidate's latency."""
    sys.path.insert(0, str(ROOT / "bench"))
    from zoo_models import MODELS, SILERO_OPTIONS, Source, fetch

    import edgekit
    from edgekit.manifest import read_manifest

    model = MODELS[name]
    options = {"silero-vad": SILERO_OPTIONS}.get(name, {})  # what the model's own tests pass beyond its zoo entry
    row: dict = {"covers": model.covers, "options": options}
    path = fetch(model)
    source = Source(model, path)
    calibration, evaluation = model.make_data(source, 64, "calibration"), model.make_data(source, 32, "evaluation")
    single = len(source.input_names) == 1
    as_data = (lambda feeds: np.concatenate([f[source.input_names[0]] for f in feeds])) if single else (lambda feeds: feeds)
    common = dict(formats=list(formats), calibration_data=as_data(calibration), validation_data=as_data(evaluation),
                  calibration_samples=len(calibration), validation_samples=len(evaluation),
                  name="model", **{"input_shapes": model.input_shapes or None, **options})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        plain = edgekit.convert(path, output_dir=f"{tmp}/plain", precision=["fp32", "int8"], rescue=False, **common)
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        rescued = edgekit.convert(path, output_dir=f"{tmp}/rescued", precision="int8", accuracy_target={"cosine": 0.99},
                                  rescue_budget_s=budget, **common)
        rescued_s = time.perf_counter() - started
        records = read_manifest(Path(f"{tmp}/rescued"))["config"].get("run", {}).get("rescue", {})
        for fmt in formats:
            entry: dict = {"plain_build_s": round(plain_s, 1), "rescued_build_s": round(rescued_s, 1)}
            for label, build, precision in (("fp32", plain, "fp32"), ("int8", plain, "int8"), ("int8_rescued", rescued, "int8")):
                entry[label] = _artifact_row(build, fmt, precision)
            record = records.get(f"{fmt}/int8")
            if record:
                entry["rescue"] = _rescue_row(record)
            row[fmt] = entry
    return row


def _artifact_row(build, fmt: str, precision: str) -> dict:
    """Accuracy, size, int8 share of compute and median latency (profiling protocol) of one artifact."""
    from edgekit.rescue_cost import int8_compute_share
    from edgekit.rescue_latency import measure_latency

    found = [a for a in build.artifacts if a.format == fmt and a.precision == precision]
    if not found:
        failure = next((f for f in build.failures if f.format == fmt and f.precision == precision), None)
        return {"error": failure.error if failure else "nothing built"}
    artifact = found[0]
    return {"cosine": artifact.validation.cosine, "top1_agreement": artifact.validation.top1_agreement,
            "status": artifact.validation.status, "size_bytes": artifact.size_bytes,
            "int8_compute_share": int8_compute_share(artifact.path, fmt) if precision == "int8" else 0.0,
            **measure_latency(artifact.path, fmt)}


def _rescue_row(record: dict) -> dict:
    """The rescue record's outcome, every candidate built (accuracy, int8 share, latency) and the curve it walked."""
    row = {key: record.get(key) for key in ("met", "stopped", "float_layers", "scheme_changes", "seconds", "budget_s",
                                            "notes", "reference_latency_ms", "latency_ms")}
    row["builds"] = len(record["tries"]) + 1
    keys = ("cosine", "top1_agreement", "int8_compute_share", "latency_ms", "latency_ci_ms", "latency_vs_plain", "size_bytes")
    row["curve"] = [{**{k: c.get(k) for k in keys}, "remedies": c.get("remedies", []), "float_layers": len(c["float_layers"]),
                     "scheme": {k: v for k, v in c["scheme"].items() if record["curve"][0]["scheme"].get(k) != v},
                     **{k: c[k] for k in ("attribution", "order") if k in c}}
                    for c in record["curve"]]
    row["candidates"] = [{**{k: t.get(k) for k in (*keys, "seconds", "accepted", "sensitivity", "error")},
                          "remedies": [r["kind"] for r in t["remedies"]], "float_layers": len(t.get("float_layers", []))}
                         for t in record["tries"]]
    row["sensitivity"] = record.get("sensitivity", [])
    return row


def plot(results: dict, path: Path) -> None:
    """Cosine against int8 share of compute and against latency for every candidate of every zoo model's rescue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m, row in results["zoo"].items()  # rows of this bench's format (every candidate recorded)
              if any("candidates" in (row.get(f) or {}).get("rescue", {}) for f in FORMATS if isinstance(row.get(f), dict))]
    if not models:
        return
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 3.6 * len(models)), squeeze=False)
    colours = dict(zip(FORMATS, ("tab:blue", "tab:orange", "tab:green")))
    for (share_ax, time_ax), name in zip(axes, models):
        for fmt in FORMATS:
            entry = results["zoo"][name].get(fmt)
            rescue = entry.get("rescue") if isinstance(entry, dict) else None
            if not rescue or "candidates" not in rescue:
                continue
            curve = [{**rescue["curve"][0], "latency_vs_plain": 1.0}, *rescue["curve"][1:]]
            points = [c for c in [curve[0], *rescue["candidates"]] if c.get("cosine") is not None]
            for ax, key in ((share_ax, "int8_compute_share"), (time_ax, "latency_vs_plain")):
                ax.scatter([p.get(key) or np.nan for p in points], [p["cosine"] for p in points], s=14, alpha=0.45,
                           color=colours[fmt])
                ax.plot([c.get(key) or np.nan for c in curve], [c["cosine"] for c in curve], "-o", color=colours[fmt],
                        label=f"{fmt} ({'met' if rescue['met'] else 'not met'})")
        labels = ("share of MACs with int8 weights", "median latency / plain int8's, timed side by side (1 thread)")
        for ax, label in zip((share_ax, time_ax), labels):
            ax.axhline(results["target"]["cosine"] if "cosine" in results["target"] else 0.99, color="grey", ls="--", lw=0.8)
            ax.set_xlabel(label)
            ax.set_ylabel("cosine vs fp32 (held-out)")
            ax.set_title(name)
            ax.grid(alpha=0.3)
        share_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def digits(runs: int) -> dict:
    """The planted-outlier digits CNN: fp32, plain int8 and rescued int8 in every format."""

    from debug_models import int8_compute_share, outlier_classifier
    from digits_demo import digits_split

    import edgekit
    from edgekit.manifest import read_manifest

    x_train, x_test, y_train, _ = digits_split()
    model = outlier_classifier(x_train, y_train)
    common = dict(formats=list(FORMATS), calibration_data=x_train[:200], validation_data=x_test[:200])
    results: dict = {"model": "digits CNN, outlier unit x1000 in a dense layer", "formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        plain = edgekit.convert(model, precision=["fp32", "int8"], output_dir=f"{tmp}/plain", rescue=False, **common)
        rescued = edgekit.convert(model, precision="int8", output_dir=f"{tmp}/rescued", accuracy_target=TARGET, **common)
        records = read_manifest(Path(f"{tmp}/rescued"))["config"]["run"]["rescue"]
        sample = x_test[:1]
        for fmt in FORMATS:
            row = {}
            for label, artifact in (("fp32", plain.artifact(fmt, "fp32")), ("int8", plain.artifact(fmt, "int8")),
                                    ("int8_rescued", rescued.artifact(fmt, "int8"))):
                row[label] = {
                    "cosine": artifact.validation.cosine, "top1_agreement": artifact.validation.top1_agreement,
                    "size_bytes": artifact.size_bytes, "latency_ms": round(latency_ms(artifact.path, fmt, sample, runs), 4),
                }
            report = edgekit.debug(plain.artifact(fmt, "int8").path, x_test[:64], calibration=x_train[:200])
            record = records[f"{fmt}/int8"]
            row["trace_first_culprit"] = report.culprits[0].name if report.culprits else None
            row["trace_first_reason"] = report.culprits[0].reasons[0] if report.culprits else None
            row["float_layers"] = record["float_layers"]
            row["rescue_builds"] = len(record["tries"]) + 1
            row["rescue_stopped"] = record["stopped"]
            row["target_met"] = record["met"]
            row["int8_compute_share"] = round(int8_compute_share(model, record["float_layers"]), 4)
            row["int8_compute_share_in_artifact"] = record["int8_compute_share"]
            results["formats"][fmt] = row
    return results


if __name__ == "__main__":
    main()
