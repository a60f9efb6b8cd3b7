"""Labelled data for training and held-out metrics: ``train_data=`` / ``val_data=`` checked against the model.

A labelled set is ``(x, y)``, a mapping with ``x`` and ``y``, or an .npz file holding arrays ``x`` and ``y``
(several inputs: ``x_<input name>`` arrays). ``x`` is an array (one input) or a dict of arrays by input name,
samples along the first axis, in the model's own layout. ``y`` holds integer class labels (or one-hot rows) for
a classifier, or targets shaped like the output for anything else.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.data import read_npz
from edgekit.errors import DataError
from edgekit.specs import TensorSpec, shape_text

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class LabelledData:
    """Checked inputs (by input name, samples first) and labels; ``task`` follows from the labels."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    task: Task
    num_classes: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    def model_x(self) -> Any:
        """``x`` as a backend takes it: the array itself for a one-input model, else the dict."""
        return next(iter(self.x.values())) if len(self.x) == 1 else self.x


def load_labelled(data: Any, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], what: str) -> LabelledData:
    """``data`` read (without unpickling) and checked against the model's inputs and its single output."""
    x, y = _split(data, inputs, what)
    x = _check_inputs(x, inputs, what)
    count = len(next(iter(x.values())))
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != count:
        raise DataError(
            f"{what} has {count} input samples but {1 if y.ndim == 0 else len(y)} labels",
            "give one label (or target row) per sample",
        )
    if count == 0:
        raise DataError(f"{what} is empty", "give at least one labelled sample")
    if len(outputs) != 1:
        raise DataError(
            f"training needs a model with one output; this one has {len(outputs)} ({', '.join(o.name for o in outputs)})",
            "optimize a single-output model, or build without optimizations",
        )
    return _with_labels(x, y, outputs[0], what)


def _split(data: Any, inputs: tuple[TensorSpec, ...], what: str) -> tuple[Any, Any]:
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise DataError(f"{what} file not found: {path}", "give an .npz file holding arrays x and y")
        arrays = read_npz(path)
        if "y" not in arrays:
            raise DataError(f"{path} has no array 'y' (it holds: {', '.join(arrays)})", "save it with numpy.savez(path, x=..., y=...)")
        y = arrays.pop("y")
        if "x" in arrays:
            return arrays["x"], y
        named = {key[2:]: value for key, value in arrays.items() if key.startswith("x_")}
        if not named:
            raise DataError(f"{path} has no array 'x'", "save it with numpy.savez(path, x=..., y=...)")
        return named, y
    if isinstance(data, Mapping) and set(data) >= {"x", "y"}:
        return data["x"], data["y"]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise DataError(
        f"{what} must be (x, y), a dict with 'x' and 'y', or an .npz file with arrays x and y; got {type(data).__name__}",
        "x: inputs with samples along the first axis, y: one label per sample",
    )


def _check_inputs(x: Any, inputs: tuple[TensorSpec, ...], what: str) -> dict[str, np.ndarray]:
    if not isinstance(x, Mapping):
        if len(inputs) != 1:
            names = ", ".join(spec.name for spec in inputs)
            raise DataError(f"the model has {len(inputs)} inputs ({names}) but {what} x is one array", "give x as a dict by input name")
        x = {inputs[0].name: x}
    expected = {spec.name for spec in inputs}
    if set(x) != expected:
        raise DataError(f"{what} x names {sorted(x)}, the model's inputs are {sorted(expected)}", "key x by input name")
    checked = {}
    for spec in inputs:
        array = np.asarray(x[spec.name])
        sample_shape = spec.shape[1:]
        fits = array.ndim == len(spec.shape) and all(d is None or d == a for d, a in zip(sample_shape, array.shape[1:]))
        if not fits:
            wanted = "(n, " + shape_text(sample_shape)[1:]
            raise DataError(
                f"{what} x for input '{spec.name}' has shape {tuple(array.shape)}, the model takes {shape_text(spec.shape)}",
                f"reshape it to {wanted} (samples first, in the model's layout)",
            )
        if not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{what} x for input '{spec.name}' is not numeric ({array.dtype})", "give numeric arrays")
        array = array.astype(spec.dtype, copy=False)
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise DataError(f"{what} x for input '{spec.name}' contains NaN or Inf", "clean the data")
        checked[spec.name] = np.ascontiguousarray(array)
    counts = {name: len(a) for name, a in checked.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{what} x arrays have different sample counts: {counts}", "give the same number of samples per input")
    return checked


def _with_labels(x: dict[str, np.ndarray], y: np.ndarray, output: TensorSpec, what: str) -> LabelledData:
    classes = output.shape[-1] if len(output.shape) == 2 else None
    integral = np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0))
    if classes is not None and classes > 1 and y.ndim == 1 and integral:
        if y.min() < 0 or y.max() >= classes:
            raise DataError(
                f"{what} labels range over {int(y.min())}..{int(y.max())}, the output '{output.name}' has {classes} classes",
                f"labels must be class indices 0..{classes - 1}",
            )
        return LabelledData(x, y.astype(np.int64), "classification", classes)
    if classes is not None and y.ndim == 2 and y.shape[1] == classes and np.all((y == 0) | (y == 1)) and np.all(y.sum(1) == 1):
        return LabelledData(x, y.argmax(1).astype(np.int64), "classification", classes)
    target_shape = output.shape[1:]
    if y.ndim == len(output.shape) and all(d is None or d == a for d, a in zip(target_shape, y.shape[1:])):
        if not np.issubdtype(y.dtype, np.number):
            raise DataError(f"{what} targets are not numeric ({y.dtype})", "give numeric targets")
        return LabelledData(x, y.astype(np.float32), "regression")
    expects = f"class indices 0..{classes - 1} of shape (n,)" if classes and classes > 1 else f"targets shaped (n, {shape_text(target_shape)[1:]}"
    raise DataError(
        f"{what} labels of shape {tuple(y.shape)} do not match the output '{output.name}' {shape_text(output.shape)}",
        f"give {expects}",
    )
