"""What honest verdicts cost: the split of the calibration data and the confidence intervals, against a build.

On the bundled digits demo (Keras 3 CNN, three formats at fp32 and int8, 300 calibration samples and no
validation data, so the build holds 90 of them out), the added work is timed on its own in this process:

* the split: the reference model's top-1 class on every calibration sample (one more forward pass) and the
  stratified split with its hashes;
* the intervals: ``validation.compare`` with its bootstrap and exact binomial intervals, minus the same
  point metrics without intervals, for every artifact of the build on the held-out samples.

Their sum is compared with the median wall time of the whole build (--repeat builds). Target: under 10%.
Results go to bench/results/verdict_overhead.json.

    .venv/bin/python bench/verdict_overhead.py [--repeat 3]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

RESULTS = Path(__file__).parent / "results" / "verdict_overhead.json"
FORMATS = ["tflite", "onnx", "openvino"]


def _point_metrics(references: list, actuals: list, name: str) -> tuple[float, float]:
    """Cosine and top-1 agreement without intervals (what a verdict cost before)."""
    ref = [np.asarray(r[name], dtype=np.float64).ravel() for r in references]
    act = [np.asarray(a[name], dtype=np.float64).ravel() for a in actuals]
    cosine = float(np.mean([np.dot(r, a) / (np.linalg.norm(r) * np.linalg.norm(a) or 1.0) for r, a in zip(ref, act)]))
    top1 = float(np.mean([r.argmax() == a.argmax() for r, a in zip(ref, act)]))
    return cosine, top1


def _timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import edgekit
    from digits_demo import digits_split, train_classifier
    from edgekit import holdout
    from edgekit.data import load_feeds
    from edgekit.options import Tolerances
    from edgekit import open_runner
    from edgekit.sources import load_source
    from edgekit.validation import compare, match_names

    x_train, _, y_train, _ = digits_split()
    with tempfile.TemporaryDirectory() as folder:
        model = train_classifier(x_train, y_train, Path(folder) / "digits.keras")
        builds, build = [], None
        for index in range(args.repeat):
            started = time.perf_counter()
            build = edgekit.convert(model, formats=FORMATS, precision=["fp32", "int8"], calibration_data=x_train[:300],
                                    output_dir=Path(folder) / f"build{index}")
            builds.append(time.perf_counter() - started)
        source = load_source(model)
        feeds = load_feeds(x_train[:300], source.spec.inputs)
        name = source.spec.outputs[0].name
        classes_seconds = _timed(lambda: [int(source.predict(f)[name].argmax()) for f in feeds], 3)
        classes = [int(source.predict(f)[name].argmax()) for f in feeds]
        split_seconds = _timed(lambda: holdout.split(feeds, 200, classes=classes))
        held = holdout.split(feeds, 200, classes=classes)
        references = [source.predict(f) for f in held.validation]
        interval_seconds = 0.0
        per_artifact = {}
        for artifact in build.artifacts:
            runner = open_runner(Path(artifact.path), artifact.format)
            in_names = match_names(source.spec.inputs, runner.inputs)
            out_names = match_names(source.spec.outputs, runner.outputs)
            actuals = [{k: runner.run({in_names[i]: v for i, v in f.items()})[out_names[k]] for k in out_names}
                       for f in held.validation]
            tolerances = Tolerances.default_for(artifact.precision)
            full = _timed(lambda: compare(references, actuals, source.spec.outputs, tolerances, classifier=True))
            point = _timed(lambda: _point_metrics(references, actuals, name))
            per_artifact[f"{artifact.format}/{artifact.precision}"] = {"compare_seconds": full, "point_seconds": point,
                                                                      "verdict": artifact.verdict}
            interval_seconds += max(0.0, full - point)
    build_seconds = statistics.median(builds)
    added = classes_seconds + split_seconds + interval_seconds
    results = {
        "model": "digits demo CNN (Keras 3), tflite/onnx/openvino x fp32/int8, 300 calibration samples, 90 held out",
        "repeat": args.repeat, "build_seconds": builds, "build_seconds_median": build_seconds,
        "reference_classes_seconds": classes_seconds, "split_seconds": split_seconds,
        "interval_seconds": interval_seconds, "per_artifact": per_artifact,
        "added_seconds": added, "added_fraction": added / build_seconds, "target_fraction": 0.10,
        "met": added / build_seconds < 0.10,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "per_artifact"}, indent=2))


if __name__ == "__main__":
    main()
