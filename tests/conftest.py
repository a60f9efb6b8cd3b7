"""Shared fixtures: scikit-learn's bundled digits and a small trained Keras 3 classifier file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test (N, 8, 8, 1) float32 in [0, 1], y_train, y_test."""
    from examples_path import digits_split

    x_train, x_test, y_train, y_test = digits_split()
    return x_train, x_test, y_train, y_test


@pytest.fixture(scope="session")
def digits_keras_file(tmp_path_factory: pytest.TempPathFactory, digits) -> Path:
    """The bundled example's Keras 3 CNN, trained on digits and saved as .keras."""
    from examples_path import train_classifier

    x_train, _, y_train, _ = digits
    return train_classifier(x_train, y_train, tmp_path_factory.mktemp("digits") / "digits.keras")


@pytest.fixture(scope="session")
def agent_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Tiny real ONNX and OpenVINO artifacts, a build folder and a labelled .npz (tests/profiling_models.py)."""
    from profiling_models import make_artifacts

    return make_artifacts(tmp_path_factory.mktemp("agent-artifacts"))
