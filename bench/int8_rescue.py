"""int8 rescue: plain int8 vs rescued int8 vs fp32, per format, on a trained digits CNN with a known culprit.

The model (tests/debug_models.py) has an ``outlier`` dense layer with one unit scaled 1000x (the head
scaled back): the float function is unchanged, plain per-tensor int8 activations are ruined. For each
of ONNX, OpenVINO and TFLite the bench builds fp32, plain int8 and int8 with
``accuracy_target={"cosine": 0.99, "top1": 0.97}``, records cosine / top-1 agreement against the Keras
model on held-out digits, file size, median single-sample latency (one thread, the runtime's own runner),
the layers kept in float and the share of multiply-accumulates left in int8, and the culprit the trace
names for plain int8. Results go to bench/results/int8_rescue.json.

    .venv/bin/python bench/int8_rescue.py [--runs 300]
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


def latency_ms(path: str, fmt: str, sample: np.ndarray, runs: int) -> float:
    """Median latency of one inference on one thread."""
    from edgekit.runtime import open_runner

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
    args = parser.parse_args()

    from debug_models import int8_compute_share, outlier_classifier
    from digits_demo import digits_split

    import edgekit
    from edgekit.manifest import read_manifest

    x_train, x_test, y_train, _ = digits_split()
    model = outlier_classifier(x_train, y_train)
    common = dict(formats=list(FORMATS), calibration_data=x_train[:200], validation_data=x_test[:200])
    results: dict = {"target": TARGET, "model": "digits CNN, outlier unit x1000 in a dense layer", "formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        plain = edgekit.convert(model, precision=["fp32", "int8"], output_dir=f"{tmp}/plain", **common)
        rescued = edgekit.convert(model, precision="int8", output_dir=f"{tmp}/rescued", accuracy_target=TARGET, **common)
        records = read_manifest(Path(f"{tmp}/rescued"))["config"]["run"]["rescue"]
        sample = x_test[:1]
        for fmt in FORMATS:
            row = {}
            for label, artifact in (("fp32", plain.artifact(fmt, "fp32")), ("int8", plain.artifact(fmt, "int8")),
                                    ("int8_rescued", rescued.artifact(fmt, "int8"))):
                row[label] = {
                    "cosine": artifact.validation.cosine, "top1_agreement": artifact.validation.top1_agreement,
                    "size_bytes": artifact.size_bytes, "latency_ms": round(latency_ms(artifact.path, fmt, sample, args.runs), 4),
                }
            report = edgekit.divergence(plain.artifact(fmt, "int8").path, x_test[:64], calibration=x_train[:200])
            record = records[f"{fmt}/int8"]
            row["trace_first_culprit"] = report.culprits[0].name if report.culprits else None
            row["trace_first_reason"] = report.culprits[0].reasons[0] if report.culprits else None
            row["float_layers"] = record["float_layers"]
            row["rescue_steps"] = len(record["steps"])
            row["target_met"] = record["met"]
            row["int8_compute_share"] = round(int8_compute_share(model, record["float_layers"]), 4)
            results["formats"][fmt] = row
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
