"""What the default int8 rescue costs on the demo: the digits demo's int8 build with and without it.

The demo's model (examples/digits_demo.py: a Keras 3 CNN trained on scikit-learn's digits) is built to int8 in
TFLite, ONNX and OpenVINO for cpu-x86, as the demo does, once with ``rescue=False`` and once with the default
(the rescue on, aiming at the int8 tolerances). Plain int8 meets them there, so the rescue should add nothing
but its record. Wall-clock seconds of each build, alternated, best of ``--runs``; results go to
bench/results/rescue_overhead.json.

    .venv/bin/python bench/rescue_overhead.py [--runs 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
RESULTS = Path(__file__).parent / "results" / "rescue_overhead.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    from digits_demo import digits_split, train_classifier

    import edgekit
    from edgekit.manifest import read_manifest

    x_train, x_test, y_train, _ = digits_split()
    times: dict[str, list[float]] = {"rescue_off": [], "rescue_default": []}
    records = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = train_classifier(x_train, y_train, Path(tmp) / "digits.keras")
        for run in range(args.runs):
            for label, rescue in (("rescue_off", False), ("rescue_default", None)):
                out = Path(tmp) / f"{label}{run}"
                start = time.perf_counter()
                edgekit.convert(model, target="cpu-x86", formats=["tflite", "onnx", "openvino"], precision="int8",
                                calibration_data=x_train[:300], validation_data=x_test, output_dir=out, rescue=rescue)
                times[label].append(round(time.perf_counter() - start, 2))
                if rescue is None:
                    records = {k: {"met": r["met"], "stopped": r["stopped"], "tries": len(r["tries"]), "seconds": r["seconds"]}
                               for k, r in read_manifest(out)["config"]["run"]["rescue"].items()}
    results = {"model": "digits demo CNN (Keras 3), int8 in TFLite, ONNX and OpenVINO for cpu-x86",
               "seconds": times, "best_seconds": {k: min(v) for k, v in times.items()}, "rescue_records": records}
    results["overhead_seconds"] = round(results["best_seconds"]["rescue_default"] - results["best_seconds"]["rescue_off"], 2)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
