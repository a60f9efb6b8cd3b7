"""Accuracy of an artifact on a labelled dataset, run through its real runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.data import load_feeds
from edgekit.errors import DataError
from edgekit.formats.runner import open_runner
from edgekit.metrics import top1_accuracy
from edgekit.specs import Artifact
from edgekit.validation import match_names


def accuracy(artifact: Artifact, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a single-input classifier artifact on ``inputs`` (one sample per row) and ``labels``."""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(inputs):
        raise DataError(f"{len(inputs)} inputs but {len(labels)} labels", "give one label per sample")
    runner = open_runner(Path(artifact.path), artifact.format)
    feeds = load_feeds(inputs, artifact.inputs, what="evaluation")
    names = match_names(artifact.inputs, runner.inputs)
    output = runner.outputs[0].name
    return top1_accuracy([runner.run({names[k]: v for k, v in feed.items()})[output] for feed in feeds], labels)
