"""Training-time optimization on held-out digits: fp32, PTQ int8, QAT int8, pruned and distilled artifacts.

For a Keras 3 CNN (TFLite, ONNX, OpenVINO) and a PyTorch CNN (ONNX, OpenVINO) trained on scikit-learn's
digits, each variant is built with ``edgekit.convert`` (the optimization steps run inside the build) and
every artifact is measured: top-1 accuracy on the held-out quarter, file size, and median single-thread
latency from ``edgekit.profile`` on this machine. Results go to bench/results/optimize.json and a plot of
accuracy against latency (marker area = file size) to bench/results/optimize.png.

    .venv/bin/python bench/optimize.py [--runs 300] [--frameworks keras torch]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
RESULTS = Path(__file__).parent / "results"
FORMATS = {"keras": ["tflite", "onnx", "openvino"], "torch": ["onnx", "openvino"]}


def variants() -> dict[str, dict]:
    """Build options per variant; the steps are edgekit's public ones."""
    import edgekit

    return {
        "fp32": {"precision": "fp32"},
        "ptq_int8": {"precision": "int8"},
        "qat_int8": {"precision": "int8", "optimizations": [edgekit.qat(epochs=3)]},
        "pruned_50_fp32": {"precision": "fp32", "optimizations": [edgekit.prune(0.5, structured=True, epochs=8)]},
        "pruned_50_int8": {"precision": "int8", "optimizations": [edgekit.prune(0.5, structured=True, epochs=8)]},
        "distilled_fp32": {"precision": "fp32", "optimizations": [edgekit.distill(student_width=0.5, epochs=20)]},
    }


def keras_model(x_train: np.ndarray, y_train: np.ndarray, path: Path) -> Path:
    """A wider digits CNN than the demo's, so that removing channels changes latency measurably."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=25, batch_size=64, verbose=0)
    model.save(path)
    return path


def torch_model(x_train: np.ndarray, y_train: np.ndarray) -> object:
    """The same network in PyTorch (NCHW), trained with plain Adam."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(25):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def measure(build, runs: int) -> list[dict]:
    import edgekit

    report = edgekit.profile(build.output_dir, threads=1, runs=runs, min_seconds=1.0, op_profile_runs=0)
    latency = {Path(r.artifact).name: r.median_ms for r in report.results}
    final = build.optimization.final if build.optimization else None
    return [{
        "format": a.format, "precision": a.precision, "accuracy": a.validation.accuracy, "size_bytes": a.size_bytes,
        "median_ms": latency.get(Path(a.path).name), "passed": a.passed,
        "parameters": final.parameters if final else None,
    } for a in build.artifacts]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["framework"], r["format"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), sharey=True)
    names = list(variants())
    colours = plt.get_cmap("tab10")
    for ax, (framework, fmt) in zip(np.atleast_1d(axes), panels):
        for r in rows:
            if (r["framework"], r["format"]) == (framework, fmt) and r["median_ms"] and r["accuracy"] is not None:
                ax.scatter(r["median_ms"], 100 * r["accuracy"], s=r["size_bytes"] / 400, alpha=0.7,
                           color=colours(names.index(r["variant"])), label=r["variant"])
        ax.set_title(f"{framework} → {fmt}")
        ax.set_xlabel("median latency, ms (1 thread)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out accuracy, %")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    legend = fig.legend(handles, labels, loc="lower center", ncol=len(names), fontsize=8)
    for handle in legend.legend_handles:
        handle.set_sizes([60])
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--frameworks", nargs="+", default=["keras", "torch"], choices=["keras", "torch"])
    args = parser.parse_args()

    from digits_demo import digits_split

    import edgekit

    x_train, x_val, y_train, y_val = digits_split()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for framework in args.frameworks:
            if framework == "keras":
                model, train, val = keras_model(x_train, y_train, Path(tmp) / "digits_wide.keras"), (x_train, y_train), (x_val, y_val)
            else:
                model = torch_model(x_train.transpose(0, 3, 1, 2).copy(), y_train)
                train, val = (x_train.transpose(0, 3, 1, 2).copy(), y_train), (x_val.transpose(0, 3, 1, 2).copy(), y_val)
            example = {"example_inputs": (np.zeros((1, 1, 8, 8), np.float32),)} if framework == "torch" else {}
            for variant, options in variants().items():
                started = time.perf_counter()
                build = edgekit.convert(model, formats=FORMATS[framework], train_data=train, val_data=val,
                                        validation_samples=len(y_val), output_dir=f"{tmp}/{framework}-{variant}",
                                        **example, **options)
                seconds = time.perf_counter() - started
                for row in measure(build, args.runs):
                    rows.append({"framework": framework, "variant": variant, "build_seconds": round(seconds, 1), **row})
                    print(json.dumps(rows[-1]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "optimize.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    plot(rows, RESULTS / "optimize.png")


if __name__ == "__main__":
    main()
