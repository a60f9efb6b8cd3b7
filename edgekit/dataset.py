"""A data path as the user gives it (any data option, in every front end): what it holds, and its labels.

The convention is :mod:`edgekit.data`'s: arrays, ``.npy``, ``.npz`` with ``x``/``y`` (or ``x_<input>``, or input
names plus ``labels``), image folders (class-named sub-folders carry labels). :func:`preview_data` reports shapes,
value ranges and the label histogram without a model; :func:`labelled_validation` gives validation data that carries
labels to a build, so that its artifacts' accuracy is measured.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgekit.data import IMAGE_SUFFIXES, NPY_MAGIC, read_npy, read_npz, split_labels
from edgekit.errors import DataError
from edgekit.limits import check_regular_file
from edgekit.specs import TensorSpec

MAX_CLASSES_SHOWN = 50


class ArrayPreview(BaseModel):
    """One array of a data file: its name, shape, dtype and value range."""

    model_config = ConfigDict(frozen=True)

    name: str
    shape: tuple[int, ...]
    dtype: str
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None


class DataPreview(BaseModel):
    """What a data path holds: ``kind`` (npy, npz, images, class folders), samples, arrays and labels."""

    model_config = ConfigDict(frozen=True)

    path: str
    kind: str
    samples: int
    arrays: tuple[ArrayPreview, ...] = ()
    label_key: str | None = None  # the array (or "folders") the labels come from
    labels: dict[str, int] = {}  # label -> samples
    note: str = ""

    @property
    def labelled(self) -> bool:
        return self.label_key is not None


def _array(name: str, array: np.ndarray) -> ArrayPreview:
    numeric = np.issubdtype(array.dtype, np.number) and array.size
    values = array.astype(np.float64) if numeric else None
    return ArrayPreview(name=name, shape=tuple(int(d) for d in array.shape), dtype=str(array.dtype),
                        minimum=float(np.nanmin(values)) if numeric else None,
                        maximum=float(np.nanmax(values)) if numeric else None,
                        mean=float(np.nanmean(values)) if numeric else None)


def _histogram(labels: np.ndarray) -> dict[str, int]:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot rows
        labels = labels.argmax(axis=1)
    values, counts = np.unique(labels.reshape(-1) if labels.ndim <= 1 else labels[:, 0], return_counts=True)
    order = np.argsort(-counts)[:MAX_CLASSES_SHOWN]
    return {str(values[i].item()): int(counts[i]) for i in order}


def preview_data(path: str | Path) -> DataPreview:
    """Shapes, value ranges and the label histogram of the data at ``path`` (no model needed; never unpickles)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {path}", "check the path")
    if path.is_dir():
        return _preview_folder(path)
    check_regular_file(path, "data", DataError)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(NPY_MAGIC):
        array = read_npy(path)
        return DataPreview(path=str(path), kind="npy", samples=int(array.shape[0]) if array.ndim else 1,
                           arrays=(_array(path.stem, array),))
    if not head.startswith(b"PK\x03\x04"):
        raise DataError(f"{path} is not a .npy or .npz file, nor an image folder", "save the data with numpy.save / numpy.savez")
    arrays = read_npz(path)
    _, labels = split_labels(arrays, ())
    key = next((k for k in ("y", "labels") if k in arrays), None) if labels is not None else None
    samples = max((len(a) for a in arrays.values() if a.ndim), default=1)
    return DataPreview(path=str(path), kind="npz", samples=samples, arrays=tuple(_array(n, a) for n, a in arrays.items()),
                       label_key=key, labels=_histogram(labels) if labels is not None else {})


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _preview_folder(folder: Path) -> DataPreview:
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    top = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if classes and not top:
        counts = {c.name: len(_images(c)) for c in classes}
        return DataPreview(path=str(folder), kind="class folders", samples=sum(counts.values()), label_key="folders",
                           labels=dict(sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_CLASSES_SHOWN]),
                           note="labels: the index of each class folder, sorted by name")
    images = _images(folder)
    return DataPreview(path=str(folder), kind="images", samples=len(images),
                       note="resized to the model's input and scaled to [0, 1] when read")


def labelled_validation(data: Any, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> Any | None:
    """Validation data that carries labels (an .npz with ``y``/``labels``, class-named image folders) as the build's
    labelled data (``edgekit.optimize.labelled.LabelledData``), for a one-output model; else None."""
    if not isinstance(data, (str, Path)) or len(outputs) != 1:
        return None
    path = Path(data)
    if path.is_dir():
        if not any(p.is_dir() for p in path.iterdir()) or any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                                                              for p in path.iterdir()):
            return None
        from edgekit.profiling.accuracy import load_labelled as load_dataset

        feeds, labels = load_dataset(path, inputs)
        x: Any = {spec.name: np.concatenate([f[spec.name] for f in feeds]) for spec in inputs}
    else:
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                return None
        x, labels = split_labels(read_npz(path), inputs)
        if labels is None:
            return None
    from edgekit.optimize.labelled import load_labelled

    return load_labelled((x, labels), inputs, outputs, "validation data")
