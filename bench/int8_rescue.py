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
text-direction classifier, each built to plain int8 (``rescue=False``) and rescued int8 (``accuracy_target``
cosine 0.99, ``--rescue-budget`` seconds per route) in every format edgekit has a route to from ONNX, with
cosine, top-1 agreement, size, the share of multiply-accumulates left in int8 (counted in the artifact), the
remedies accepted and why the search stopped. Results go to bench/results/int8_rescue.json (written after
each model, so a run cut short keeps what it measured).

    .venv/bin/python bench/int8_rescue.py [--runs 300] [--zoo ppocr-det,silero-vad,ppocr-cls] [--rescue-budget 300] [--merge]
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
    parser.add_argument("--rescue-budget", type=float, default=300.0)
    parser.add_argument("--merge", action="store_true", help="keep the other zoo models of an earlier results file")
    args = parser.parse_args()
    results: dict = {"target": TARGET, "formats": {}, "zoo": {}}
    if args.merge and RESULTS.exists():
        results["zoo"] = json.loads(RESULTS.read_text()).get("zoo", {})
    for name in [n for n in args.zoo.split(",") if n]:
        results["zoo"][name] = zoo_model(name, args.rescue_budget)
        _write(results)
    if not args.no_digits:
        results.update(digits(args.runs))
        _write(results)
    print(json.dumps(results, indent=2))


def _write(results: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def zoo_model(name: str, budget: float) -> dict:
    """Plain and rescued int8 of one zoo model in every format with a route from ONNX."""
    sys.path.insert(0, str(ROOT / "bench"))
    from zoo_models import MODELS, Source, fetch

    import edgekit
    from edgekit.manifest import read_manifest
    from edgekit.rescue_cost import int8_compute_share

    model = MODELS[name]
    path = fetch(model)
    source = Source(model, path)
    calibration, evaluation = model.make_data(source, 64, "calibration"), model.make_data(source, 32, "evaluation")
    single = len(source.input_names) == 1
    as_data = (lambda feeds: np.concatenate([f[source.input_names[0]] for f in feeds])) if single else (lambda feeds: feeds)
    common = dict(formats=["onnx", "openvino"], precision="int8", calibration_data=as_data(calibration),
                  validation_data=as_data(evaluation), calibration_samples=len(calibration),
                  validation_samples=len(evaluation), input_shapes=model.input_shapes or None, name="model")
    row: dict = {"covers": model.covers, "tflite": "no ONNX -> TFLite route in edgekit"}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        plain = edgekit.convert(path, output_dir=f"{tmp}/plain", rescue=False, **common)
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        rescued = edgekit.convert(path, output_dir=f"{tmp}/rescued", accuracy_target={"cosine": 0.99},
                                  rescue_budget_s=budget, **common)
        rescued_s = time.perf_counter() - started
        records = read_manifest(Path(f"{tmp}/rescued"))["config"].get("rescue", {})
        for fmt in ("onnx", "openvino"):
            entry: dict = {"plain_build_s": round(plain_s, 1), "rescued_build_s": round(rescued_s, 1)}
            for label, build in (("int8", plain), ("int8_rescued", rescued)):
                found = [a for a in build.artifacts if a.format == fmt]
                if not found:
                    failure = next((f for f in build.failures if f.format == fmt), None)
                    entry[label] = {"error": failure.error if failure else "nothing built"}
                    continue
                artifact = found[0]
                entry[label] = {"cosine": artifact.validation.cosine, "top1_agreement": artifact.validation.top1_agreement,
                                "status": artifact.validation.status, "size_bytes": artifact.size_bytes,
                                "int8_compute_share": int8_compute_share(artifact.path, fmt)}
            record = records.get(f"{fmt}/int8")
            if record:
                entry["rescue"] = {key: record[key] for key in ("met", "stopped", "float_layers", "scheme_changes", "seconds",
                                                                "notes")}
                entry["rescue"]["builds"] = len(record["tries"]) + 1
                entry["rescue"]["curve"] = [{k: c[k] for k in ("cosine", "int8_compute_share", "float_layers")}
                                            for c in record["curve"]]
            row[fmt] = entry
    return row


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
