"""Conversion overhead: edgekit's route versus the bare converter call, and start-up time of the CLI.

For a MobileNetV2-sized Keras 3 model (random weights: fine for timing), each route is timed in a fresh
process both ways: the documented one-call export of the framework (``model.export(format=...)`` for
TFLite/LiteRT and ONNX, ``openvino.convert_model`` + ``save_model`` for OpenVINO) and ``edgekit.convert``
(in-process, so that only the route's own work is compared; loading and validation are reported apart).
Results (medians over --repeat runs, and their ratio) go to bench/results/convert_overhead.json.

    .venv/bin/python bench/convert_overhead.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "convert_overhead.json"

MAKE_MODEL = """
import keras, sys
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
model.save(sys.argv[1])
"""

BARE = """
import json, sys, time, keras
import numpy as np
model = keras.saving.load_model(sys.argv[1])
model(np.zeros((1, 224, 224, 3), np.float32))  # Keras 3 export needs a model that has been called once
fmt, out = sys.argv[2], sys.argv[3]
started = time.perf_counter()
if fmt == "openvino":
    import openvino as ov
    ov.save_model(ov.convert_model(model), out + ".xml", compress_to_fp16=False)
else:
    model.export(out + (".tflite" if fmt == "tflite" else ".onnx"), format="litert" if fmt == "tflite" else "onnx")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

EDGEKIT = """
import json, sys, time, numpy as np, edgekit
started = time.perf_counter()
build = edgekit.convert(sys.argv[1], formats=[sys.argv[2]], precision="fp32", output_dir=sys.argv[3], isolate=False,
                        validation_data=np.zeros((2, 224, 224, 3), np.float32))
artifact = build.artifacts[0] if build.artifacts else None
print(json.dumps({"seconds": artifact.convert_seconds if artifact else None, "total_seconds": time.perf_counter() - started,
                  "status": artifact.validation.status if artifact else [f.error for f in build.failures]}))
"""


def _run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _startup_seconds(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["tflite", "onnx", "openvino"])
    args = parser.parse_args()
    results: dict = {"model": "keras.applications.MobileNetV2(weights=None), 224x224x3, Keras 3", "repeat": args.repeat, "routes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model = str(Path(tmp) / "mobilenet_v2.keras")
        _run(MAKE_MODEL + "\nprint('{}')", model)
        for fmt in args.formats:
            bare, ours, total = [], [], []
            for index in range(args.repeat):
                bare.append(_run(BARE, model, fmt, str(Path(tmp) / f"bare_{fmt}_{index}"))["seconds"])
                measured = _run(EDGEKIT, model, fmt, str(Path(tmp) / f"edgekit_{fmt}_{index}"))
                ours.append(measured["seconds"])
                total.append(measured["total_seconds"])
            entry = {
                "bare_median_s": statistics.median(bare), "edgekit_route_median_s": statistics.median(ours),
                "edgekit_total_median_s": statistics.median(total), "bare_runs_s": bare, "edgekit_route_runs_s": ours,
            }
            entry["route_over_bare_ratio"] = entry["edgekit_route_median_s"] / entry["bare_median_s"]
            results["routes"][f"keras3->{fmt}"] = entry
            print(fmt, json.dumps({k: round(v, 3) for k, v in entry.items() if isinstance(v, float)}))
    python = sys.executable
    results["import_edgekit_median_s"] = _startup_seconds([python, "-c", "import edgekit"], 9)
    results["cli_help_median_s"] = _startup_seconds([python, "-m", "edgekit.cli", "--help"], 9)
    results["python_startup_median_s"] = _startup_seconds([python, "-c", "pass"], 9)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "routes"}, indent=2))


if __name__ == "__main__":
    main()
