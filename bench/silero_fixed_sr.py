"""silero-vad (the real model from its PyPI wheel) to OpenVINO fp32 and int8 with its sample rate fixed.

silero-vad takes an int64 ``sr`` input and branches on it with ONNX ``If`` nodes; OpenVINO's ONNX frontend
cannot convert those graphs with a dynamic rank. ``input_values={"sr": 16000}`` folds the input and the
control flow it drives; the state is carried step to step (``states``) in calibration and validation.

    .venv/bin/python bench/silero_fixed_sr.py [--calibration 64] [--evaluation 64]

Writes bench/results/silero_fixed_sr.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from zoo_models import MODELS, Source, fetch, silero_data  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=64)
    parser.add_argument("--evaluation", type=int, default=64)
    parser.add_argument("--accuracy-target", default=None, help="e.g. cosine=0.98: let edgekit rescue int8")
    args = parser.parse_args()
    import edgekit

    path = fetch(MODELS["silero-vad"])
    source = Source(MODELS["silero-vad"], path)
    calibration = silero_data(source, args.calibration, "calibration")
    evaluation = silero_data(source, args.evaluation, "evaluation")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        build = edgekit.convert(
            str(path), formats=["openvino"], precision=["fp32", "int8"], output_dir=out, name="silero_vad",
            calibration_data=calibration, validation_data=evaluation, calibration_samples=len(calibration),
            validation_samples=len(evaluation), input_values={"sr": 16000},
            input_shapes={"input": (1, 576), "state": (2, 1, 128)}, accuracy_target=args.accuracy_target,
        )
        seconds = time.perf_counter() - started
        rows = [{"format": a.format, "precision": a.precision, "passed": a.passed, "inputs": [s.name for s in a.inputs],
                 "size_bytes": a.size_bytes, **a.validation.model_dump(include={
                     "status", "samples", "cosine", "max_abs_error", "top1_agreement", "int8_weight_fraction",
                     "executed_precision", "message"})} for a in build.artifacts]
        failures = [f.model_dump() for f in build.failures]
        notes = {f"{a.format}/{a.precision}": list(a.notes) for a in build.artifacts}
    result = {"model": "silero-vad 6.2.3 (silero_vad_16k_op15.onnx)", "input_values": {"sr": 16000},
              "calibration_samples": len(calibration), "evaluation_samples": len(evaluation),
              "accuracy_target": args.accuracy_target, "seconds": round(seconds, 1), "artifacts": rows,
              "failures": failures, "notes": notes}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "silero_fixed_sr.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
