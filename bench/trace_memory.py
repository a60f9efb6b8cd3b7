"""Peak memory of a divergence trace: streamed per-layer statistics vs every intermediate tensor held.

The model is a plain conv net made here (8 conv+ReLU layers, 16 channels at 256x320, random weights), built
to fp32 and int8 ONNX with edgekit. Each measure runs in a fresh process and reports its peak RSS
(``ru_maxrss``) less the RSS after the model files were opened:
- ``streamed``: ``edgekit.debug`` as it runs now (statistics accumulated one sample at a time);
- ``held``: the same traces with every sample's tensors of both models kept at once, as the trace did before
  it streamed (the memory the old implementation needed).
Results go to bench/results/trace_memory.json.

    .venv/bin/python bench/trace_memory.py [--samples 8]
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
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "streamed":
    report = edgekit.debug(folder + "/out/model_int8.onnx", data, reference=folder + "/out/model_fp32.onnx", samples=samples)
    cosine = report.output_cosine
else:
    feeds = read_feeds(data, inputs, "evaluation", samples)
    held = [list(run_trace(folder + f"/out/model_{p}.onnx", "onnx", feeds).samples()) for p in ("fp32", "int8")]
    cosine = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mb": round(peak / 1024, 1), "trace_rss_mb": round((peak - base) / 1024, 1), "output_cosine": cosine}))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
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
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
