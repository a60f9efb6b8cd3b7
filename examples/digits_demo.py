"""The bundled example: train a small digits classifier, convert it for cpu-x86 to TFLite, ONNX and
OpenVINO at fp32 and int8, validate every artifact, and print size, held-out accuracy and parity.

    python examples/digits_demo.py [--out build/demo]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.table import Table

import edgekit
from edgekit.console import console, human_size
from edgekit.evaluation import accuracy
from edgekit.quiet import native_stderr, quiet_framework_env


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as NHWC float32 in [0, 1], split 75/25 (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    return tuple(train_test_split(images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target))


def train_classifier(x_train: np.ndarray, y_train: np.ndarray, path: Path) -> Path:
    """A small Keras 3 CNN (conv, depthwise conv, batch norm, residual add, pooling, dense), saved as .keras."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, batch_size=64, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/demo", type=Path)
    parser.add_argument("--verbose", action="store_true", help="show the frameworks' own log lines too")
    args = parser.parse_args(argv)
    quiet_framework_env(args.verbose)
    with native_stderr(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:

    x_train, x_test, y_train, y_test = digits_split()
    console.print(f"training a digits classifier on {len(x_train)} images ...")
    model_path = train_classifier(x_train, y_train, args.out / "digits.keras")
    console.print(f"converting {model_path} for cpu-x86 ...")
    build = edgekit.convert(
        model_path, target="cpu-x86", formats=["tflite", "onnx", "openvino"], precision=["fp32", "int8"],
        calibration_data=x_train[:300], validation_data=x_test, output_dir=args.out / "edgekit",
    )
    table = Table(title=f"digits classifier -> cpu-x86 ({len(x_test)} held-out digits)")
    for column in ("format", "precision", "size", "accuracy", "cosine", "top-1 agreement", "max abs err", "status"):
        table.add_column(column, justify="left" if column in ("format", "precision", "status") else "right")
    for artifact in build.artifacts:
        v = artifact.validation
        table.add_row(
            artifact.format, artifact.precision, human_size(artifact.size_bytes),
            f"{accuracy(artifact, x_test, y_test):.2%}", f"{v.cosine:.5f}", f"{v.top1_agreement:.3f}",
            f"{v.max_abs_error:.4f}", "[green]passed[/]" if artifact.passed else f"[red]{artifact.verdict}[/]",
        )
    for failure in build.failures:
        table.add_row(failure.format, failure.precision, "-", "-", "-", "-", "-", f"[red]{failure.error}[/]")
    console.print(table)
    console.print(f"manifest: {build.manifest_path}")
    return 0 if build.passed else 1


if __name__ == "__main__":
    sys.exit(main())
