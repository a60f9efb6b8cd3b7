"""Labelled datasets for accuracy on the device, and parity of outputs against a reference artifact.

A dataset is either an ``.npz`` with ``x`` (inputs) and ``y`` (integer labels) for a single-input model,
or one array per input name plus ``labels``; or a folder of class-named folders of images (classes are
the sub-folder names sorted, label = index), sized to the input and scaled to [0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.contract.schema import Contract
from edgekit.data import Feed, load_feeds, read_image_folder, read_npz, split_labels
from edgekit.errors import DataError
from edgekit.formats.runner import Runner
from edgekit.metrics import top1_accuracy
from edgekit.specs import TensorSpec
from edgekit.validation import output_metrics


def load_labelled(path: Path, inputs: tuple[TensorSpec, ...], contract: Contract | None = None) -> tuple[list[Feed], np.ndarray]:
    """Checked feeds and integer labels of the dataset at ``path`` for a model with ``inputs``.

    With the artifact's ``contract``, raw images and WAV files are preprocessed as it says
    (``edgekit.contract.preprocess``) and data that break it are refused with the contract line.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset not found: {path}", "give an .npz (x, y) or a folder of class-named image folders")
    raw = contract is not None and len(contract.inputs) == 1 and contract.inputs[0].kind in ("image", "audio")
    if path.is_dir() and raw:
        from edgekit.contract.preprocess import labelled_folder

        data, labels = labelled_folder(path, contract)
    elif path.is_dir():
        data, labels = _image_classes(path, inputs)
    else:
        arrays = read_npz(path)
        data, labels = split_labels(arrays, inputs)
        if labels is None:
            raise DataError(f"{path.name} has no labels (keys: {', '.join(sorted(arrays))})",
                            "store the integer labels under 'y' (with inputs under 'x') or 'labels'")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"the labels must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}",
                        "give one class index per sample")
    if contract is not None:
        from edgekit.contract.checks import check_arrays

        check_arrays(data if isinstance(data, dict) else {inputs[0].name: data}, contract)
    feeds = load_feeds(data, inputs, what="dataset")
    if len(feeds) != len(labels):
        raise DataError(f"the dataset has {len(feeds)} samples but {len(labels)} labels", "give one label per sample")
    return feeds, labels


def _image_classes(folder: Path, inputs: tuple[TensorSpec, ...]) -> tuple[np.ndarray, np.ndarray]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder} has no class folders", "put the images of each class in a folder named after it")
    images, labels = [], []
    for index, sub in enumerate(classes):
        batch = read_image_folder(sub, inputs, "dataset")
        images.append(batch)
        labels.extend([index] * len(batch))
    return np.concatenate(images), np.asarray(labels, dtype=np.int64)


def prediction_output(runner: Runner) -> str:
    """The output whose argmax is the class: the first with more than one value per sample."""
    for spec in runner.outputs:
        if spec.shape and (spec.shape[-1] or 0) > 1:
            return spec.name
    return runner.outputs[0].name


def evaluate(runner: Runner, feeds: list[Feed], labels: np.ndarray) -> tuple[float, str, np.ndarray]:
    """Top-1 accuracy, the output used and that output for every sample (stacked, float32)."""
    name = prediction_output(runner)
    outputs = np.stack([np.asarray(runner.run(feed)[name], dtype=np.float32) for feed in feeds])
    return top1_accuracy(outputs, labels), name, outputs


def parity(reference: np.ndarray, actual: np.ndarray, name: str) -> tuple[float, float, float | None]:
    """Cosine (mean per sample), max absolute error and top-1 agreement of ``actual`` against ``reference``."""
    if reference.shape != actual.shape:
        raise DataError(f"the reference output has shape {reference.shape}, the artifact's {actual.shape}",
                        "compare artifacts of the same model")
    classifier = reference.ndim >= 2 and reference.shape[-1] > 1
    metrics = output_metrics(name, list(reference), list(actual), classifier=classifier)
    return metrics.cosine, metrics.max_abs_error, metrics.top1_agreement
