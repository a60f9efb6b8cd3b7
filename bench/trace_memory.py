"""Peak memory of a divergence trace: streamed per-layer statistics vs every intermediate tensor held.

The model is a plain conv net made here (8 conv+ReLU layers, 16 channels at 256x320, random weights), built
to fp32 and int8 ONNX with edgekit. Each measure runs in a fresh process and reports its peak RSS
(``ru_maxrss``) less the RSS after the model files were opened:
- ``streamed``: ``edgekit.debug`` as it runs now (statistics accumulated one sample at a time);
- ``held``: the same traces with every sample's tensors of both models kept at once, as the trace did before
  it streamed (the memory the old implementation needed).
With ``--detector``, the streamed trace of the PP-OCRv4 text detector (``bench/zoo_models.py``, 256x320,
64 samples, ONNX fp32 vs int8) is measured too, with the bytes one sample's intermediate tensors take (what
holding every sample would have needed: that many bytes x samples x 2 models). Results go to
bench/results/trace_memory.json.

    .venv/bin/python bench/trace_memory.py [--samples 16] [--detector]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "trace_memory.json"
SHAPE = (1, 3, 256, 320)
LAYERS, CHANNELS = 8, 16

CHILD = r"""
import json, resource, sys
import numpy as np
mode, folder, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = np.load(folder + "/eval.npy")[:samples]
from edgekit.divergence.resolve import input_specs, read_feeds
from edgekit.divergence.trace import run_trace
import edgekit
from pathlib import Path
inputs = input_specs(Path(folder + "/out/model_int8.onnx"), Path(folder + "/out/model_fp32.onnx"), "onnx")
ref = run_trace(folder + "/out/model_fp32.onnx", "onnx", read_feeds(data[:1], inputs, "evaluation", 1))
one_sample_mb = sum(v.nbytes for v in next(ref.samples()).values()) / 2**20
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "streamed":
    report = edgekit.debug(folder + "/out/model_int8.onnx", data, reference=folder + "/out/model_fp32.onnx", samples=samples)
    cosine = report.output_cosine
else:
    feeds = read_feeds(data, inputs, "evaluation", samples)
    held = [list(run_trace(folder + f"/out/model_{p}.onnx", "onnx", feeds).samples()) for p in ("fp32", "int8")]
    cosine = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mb": round(peak / 1024, 1), "trace_rss_mb": round((peak - base) / 1024, 1), "output_cosine": cosine,
                  "one_sample_tensors_mb": round(one_sample_mb, 1)}))
"""


def conv_net(path: Path) -> None:
    """The large-activation conv net as an ONNX file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, previous, channels = [], [], "image", SHAPE[1]
    for i in range(LAYERS):
        w = rng.normal(0, (2.0 / (9 * channels)) ** 0.5, (CHANNELS, channels, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(CHANNELS, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [previous, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        previous, channels = f"r{i}", CHANNELS
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(SHAPE))],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [1, CHANNELS, *SHAPE[2:]])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def measure(mode: str, folder: str, samples: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, folder, str(samples)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {mode} measure failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def detector(samples: int = 64) -> dict:
    """The streamed trace of PP-OCRv4 det (int8 vs fp32 ONNX, 256x320) and what holding every tensor would take."""
    sys.path.insert(0, str(Path(__file__).parent))
    from zoo_models import MODELS, Source, fetch

    import edgekit

    model = MODELS["ppocr-det"]
    path = fetch(model)
    source = Source(model, path)
    calibration = np.concatenate([f["x"] for f in model.make_data(source, 32, "calibration")])
    evaluation = np.concatenate([f["x"] for f in model.make_data(source, samples, "evaluation")])
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "eval.npy", evaluation)
        edgekit.convert(path, formats="onnx", precision=["fp32", "int8"], output_dir=f"{tmp}/out", name="model", rescue=False,
                        calibration_data=calibration, validation_data=evaluation[:8], input_shapes=model.input_shapes)
        streamed = measure("streamed", tmp, samples)
    held_mb = 2 * samples * streamed["one_sample_tensors_mb"]
    return {"model": "PP-OCRv4 det at 256x320, ONNX fp32 vs int8", "samples": samples, "streamed": streamed,
            "held_estimate_mb": round(held_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--detector", action="store_true", help="also measure the PP-OCRv4 detector (streamed only)")
    args = parser.parse_args()
    import edgekit

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        conv_net(Path(tmp) / "convnet.onnx")
        np.save(Path(tmp) / "eval.npy", rng.normal(size=(args.samples, *SHAPE)).astype(np.float32))
        edgekit.convert(Path(tmp) / "convnet.onnx", formats="onnx", precision=["fp32", "int8"], output_dir=f"{tmp}/out",
                        name="model", rescue=False,
                        calibration_data=rng.normal(size=(8, *SHAPE)).astype(np.float32),
                        validation_data=rng.normal(size=(4, *SHAPE)).astype(np.float32))
        per_sample_mb = 2 * LAYERS * CHANNELS * SHAPE[2] * SHAPE[3] * 4 / 2**20  # conv + relu outputs, one model
        results = {
            "model": f"{LAYERS} conv+ReLU layers, {CHANNELS} channels at {SHAPE[2]}x{SHAPE[3]} (ONNX, fp32 vs int8)",
            "samples": args.samples, "intermediate_mb_per_sample_per_model": round(per_sample_mb, 1),
            "streamed": measure("streamed", tmp, args.samples), "held": measure("held", tmp, args.samples),
        }
    results["reduction"] = round(results["held"]["trace_rss_mb"] / max(results["streamed"]["trace_rss_mb"], 1.0), 1)
    if args.detector:
        results["ppocr_det"] = detector()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
