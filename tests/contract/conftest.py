"""A digits build with a declared contract (labels from a file, pixels in [0, 1]) and its test set as raw PNGs."""
from __future__ import annotations

import numpy as np
import pytest

CONTRACT_YAML = """\
inputs:
  - name: image
    kind: image
    color: GRAY
    range: [0, 1]
    resize: stretch
outputs:
  - name: probabilities
    kind: probabilities
    score_threshold: 0.5
labels_file: labels.txt
"""


def png_pixels(x: np.ndarray) -> np.ndarray:
    """Digits in [0, 1] as the 8-bit pixels a PNG holds."""
    return np.round(x[..., 0] * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def digits_contract_build(tmp_path_factory, digits, digits_keras_file) -> dict:
    """The bundled demo's model built to TFLite, ONNX and OpenVINO at fp32 and int8 with a contract; its
    labelled validation data are the PNG pixels of the test set scaled to [0, 1], so the build measures
    accuracy on exactly what the PNGs hold."""
    from PIL import Image

    import edgekit

    x_train, x_test, _, y_test = digits
    root = tmp_path_factory.mktemp("digits-contract")
    (root / "labels.txt").write_text("\n".join(f"digit {i}" for i in range(10)) + "\n")
    (root / "contract.yaml").write_text(CONTRACT_YAML)
    pixels = png_pixels(x_test)
    x_png = (pixels.astype(np.float32) / np.float32(255.0))[..., np.newaxis]
    np.savez(root / "val.npz", x=x_png, y=y_test)
    build = edgekit.convert(digits_keras_file, formats=["tflite", "onnx", "openvino"], precision=["fp32", "int8"],
                            calibration_data=x_train[:300], val_data=str(root / "val.npz"),
                            validation_samples=len(x_test), output_dir=root / "build", contract=root / "contract.yaml")
    images = root / "png"
    for index, (image, label) in enumerate(zip(pixels, y_test)):
        folder = images / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / f"{index:04d}.png")
    np.savez(root / "raw255.npz", x=pixels.astype(np.float32)[..., np.newaxis], y=y_test)
    return {"build": build, "root": root, "png": images, "raw255": root / "raw255.npz", "y": y_test, "x": x_png,
            "keras": digits_keras_file}
