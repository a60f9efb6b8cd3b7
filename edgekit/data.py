"""Calibration and evaluation data: one protocol for arrays, .npy/.npz files, image folders and iterables.

An .npz may also carry labels (``x``/``y``, ``x_<input>``/``y``, or input names plus ``labels``: see
:func:`split_labels`); the labels are left out of the feeds.
Every form becomes a list of *feeds*: dicts mapping each input name to an array with a batch dimension.
Rule: a sample whose array already has the input's rank is fed as it is; an array one rank short is fed
as a batch of one. Shapes and dtypes are checked against the model's inputs on the first sample,
before any long loop.
"""
from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edgekit.errors import DataError
from edgekit.limits import check_regular_file
from edgekit.specs import TensorSpec, shape_text

Feed = dict[str, np.ndarray]
NPY_MAGIC = b"\x93NUMPY"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
MAX_ARRAY_BYTES = 4 << 30
LABEL_KEYS = ("y", "labels")


def load_feeds(data: Any, inputs: tuple[TensorSpec, ...], *, what: str = "calibration", limit: int | None = None,
               allow_non_finite: bool = False) -> list[Feed]:
    """Turn ``data`` into at most ``limit`` checked feeds for a model with ``inputs`` (NaN/Inf refused unless
    ``allow_non_finite``, for the data report that counts them)."""
    if data is None:
        return []
    samples = _samples(data, inputs, what)
    feeds: list[Feed] = []
    for index, sample in enumerate(islice(samples, limit)):
        feeds.append(_check_feed(sample, inputs, what, index, allow_non_finite))
    if not feeds:
        raise DataError(f"the {what} data is empty", f"give at least one sample for each input ({_names(inputs)})")
    return feeds


def _names(inputs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(spec.name for spec in inputs)


def _samples(data: Any, inputs: tuple[TensorSpec, ...], what: str) -> Iterator[Any]:
    if isinstance(data, (str, Path)):
        return _samples(_read_path(Path(data), inputs, what), inputs, what)
    if isinstance(data, np.ndarray):
        _single_input(inputs, what)
        return iter(data)  # the first axis indexes samples
    if isinstance(data, Mapping):
        return _dict_samples(data, inputs, what)
    if isinstance(data, Iterable):
        return iter(data)
    raise DataError(
        f"the {what} data has an unsupported type {type(data).__name__}",
        "give a numpy array, a .npy/.npz file, an image folder, a dict of arrays by input name, or an iterable of batches",
    )


def _single_input(inputs: tuple[TensorSpec, ...], what: str) -> None:
    if len(inputs) != 1:
        raise DataError(
            f"the model has {len(inputs)} inputs ({_names(inputs)}) but the {what} data is a single array",
            "give a dict or an .npz keyed by input name",
        )


def _dict_samples(data: Mapping, inputs: tuple[TensorSpec, ...], what: str) -> Iterator[Feed]:
    """Per-input arrays whose first axis indexes samples; a rank-0 array is the same in every sample."""
    arrays = {name: np.asarray(value) for name, value in data.items()}
    lengths = {name: len(a) for name, a in arrays.items() if a.ndim}
    if len(set(lengths.values())) > 1:
        raise DataError(f"the {what} arrays have different sample counts: {lengths}", "give the same number of samples per input")
    for index in range(next(iter(lengths.values()), 1)):
        yield {name: a[index] if a.ndim else a for name, a in arrays.items()}


def _check_feed(sample: Any, inputs: tuple[TensorSpec, ...], what: str, index: int, allow_non_finite: bool = False) -> Feed:
    if not isinstance(sample, Mapping):
        _single_input(inputs, what)
        sample = {inputs[0].name: sample}
    given, expected = set(sample), {spec.name for spec in inputs}
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise DataError(f"{what} sample {index}: {'; '.join(parts)}", f"the model's inputs are: {_names(inputs)}")
    return {spec.name: _fit(np.asarray(sample[spec.name]), spec, what, index, allow_non_finite) for spec in inputs}


def _fit(array: np.ndarray, spec: TensorSpec, what: str, index: int, allow_non_finite: bool = False) -> np.ndarray:
    rank = len(spec.shape)
    if array.ndim == rank - 1:
        array = array[np.newaxis, ...]
    shape_ok = array.ndim == rank and all(d is None or d == a for d, a in zip(spec.shape, array.shape))
    if not shape_ok:
        raise DataError(
            f"{what} sample {index} for input '{spec.name}' has shape {tuple(array.shape)}, "
            f"the model expects {shape_text(spec.shape)}",
            "a sample with the input's rank is fed as it is, one rank short as a batch of one",
        )
    wanted = np.dtype(spec.dtype)
    if array.dtype != wanted:
        same_kind = (
            (np.issubdtype(array.dtype, np.floating) and np.issubdtype(wanted, np.floating))
            or (np.issubdtype(array.dtype, np.integer) and np.issubdtype(wanted, np.integer))
        )
        if not same_kind:
            raise DataError(
                f"{what} sample {index} for input '{spec.name}' has dtype {array.dtype}, the model expects {wanted}",
                "convert the data to the input's dtype (and scale images to the range the model was trained on)",
            )
        array = array.astype(wanted)
    if not allow_non_finite and np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise DataError(f"{what} sample {index} for input '{spec.name}' contains NaN or Inf", "clean the data")
    return np.asarray(array, order="C")


# -- files -------------------------------------------------------------------------------------------


def _read_path(path: Path, inputs: tuple[TensorSpec, ...], what: str) -> Any:
    if not path.exists():
        raise DataError(f"{what} data not found: {path}", "check the path")
    if path.is_dir():
        return read_image_folder(path, inputs, what)
    check_regular_file(path, f"{what} data", DataError)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(NPY_MAGIC):
        return read_npy(path)
    if head.startswith(b"PK\x03\x04"):
        return split_labels(read_npz(path), inputs)[0]
    raise DataError(f"{path} is not a .npy or .npz file, nor an image folder", "save the data with numpy.save / numpy.savez")


def split_labels(arrays: dict[str, np.ndarray], inputs: tuple[TensorSpec, ...]) -> tuple[Any, np.ndarray | None]:
    """An .npz's arrays as (inputs, labels), the one convention of every data option: labels under ``y`` or
    ``labels`` (unless an input has that name); inputs under ``x`` (one input), ``x_<input name>``, the input
    names themselves, or the only array left."""
    names = {spec.name for spec in inputs}
    arrays = dict(arrays)
    key = next((k for k in LABEL_KEYS if k in arrays and k not in names), None)
    labels = arrays.pop(key) if key is not None else None
    prefixed = {k[2:]: v for k, v in arrays.items() if k.startswith("x_") and k[2:] in names}
    if prefixed and set(prefixed) == names:
        return prefixed, labels
    if len(inputs) == 1 and inputs[0].name not in arrays and ("x" in arrays or len(arrays) == 1):
        return arrays["x"] if "x" in arrays else next(iter(arrays.values())), labels
    return arrays, labels


def _header(handle) -> tuple[tuple[int, ...], np.dtype, bool]:
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(handle)
    return tuple(shape), dtype, fortran


def read_npy(path: Path) -> np.ndarray:
    """Read a .npy file after checking its declared size against the bytes present; never unpickles."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        try:
            shape, dtype, _ = _header(handle)
        except ValueError as exc:
            raise DataError(f"{path} has a damaged .npy header: {exc}", "save the data again with numpy.save") from None
        if dtype.hasobject:
            raise DataError(f"{path} holds Python objects (pickled), which edgekit does not load", "save a numeric array")
        declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        present = size - handle.tell()
        if declared > present or declared > MAX_ARRAY_BYTES:
            raise DataError(
                f"{path} declares {declared} bytes of data but holds {present}", "the file is truncated; save it again"
            )
        return np.load(path, allow_pickle=False)


def read_npz(path: Path | BinaryIO, limit: int = MAX_ARRAY_BYTES, name: str | None = None) -> dict[str, np.ndarray]:
    """Read every array of an .npz (a file or a binary stream, shown as ``name``) after checking member names
    and declared sizes against ``limit`` bytes; never unpickles."""
    shown = name or path
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                total += info.file_size
                if not info.filename.endswith(".npy") or "/" in info.filename or ".." in info.filename:
                    raise DataError(f"{shown} has an unexpected member {info.filename!r}", "save the data with numpy.savez")
            if total > limit:
                raise DataError(f"{shown} declares {total} bytes of arrays, over the {limit} limit", "use fewer samples")
            for info in archive.infolist():
                with archive.open(info) as member:
                    shape, dtype, _ = _header(member)
                    if dtype.hasobject:
                        raise DataError(f"{shown}:{info.filename} holds Python objects", "save numeric arrays")
                    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                    if declared > info.file_size:
                        raise DataError(f"{shown}:{info.filename} is truncated", "save the data again")
        if hasattr(path, "seek"):
            path.seek(0)
        with np.load(path, allow_pickle=False) as npz:
            return {member: npz[member] for member in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise DataError(f"{shown} is not a readable .npz file: {exc}", "save the data again with numpy.savez") from None


def read_image_folder(folder: Path, inputs: tuple[TensorSpec, ...], what: str) -> np.ndarray:
    """Images of a folder (sniffed by content, sorted by name) resized to the input, scaled to [0, 1]."""
    from PIL import Image

    _single_input(inputs, what)
    spec = inputs[0]
    if len(spec.shape) != 4:
        raise DataError(f"an image folder needs an image input; '{spec.name}' has shape {shape_text(spec.shape)}", "give arrays instead")
    channels_first = spec.layout == "NCHW"
    _, a, b, c = spec.shape
    height, width, channels = (b, c, a) if channels_first else (a, b, c)
    if None in (height, width, channels) or channels not in (1, 3):
        raise DataError(f"cannot size images for input shape {shape_text(spec.shape)}", "fix the input shape or give arrays")
    images = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                with Image.open(file) as image:
                    pixels = image.convert("L" if channels == 1 else "RGB").resize((width, height))
            except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning):
                continue  # not an image: folders may hold other files
            array = np.asarray(pixels, dtype=np.float32).reshape(height, width, channels) / 255.0
            images.append(array.transpose(2, 0, 1) if channels_first else array)
    if not images:
        raise DataError(f"no images found in {folder}", f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
    return np.stack(images)


def synthetic_feeds(inputs: tuple[TensorSpec, ...], count: int, seed: int = 0) -> list[Feed]:
    """Random feeds for validation when the user gives no data (batch 1; float inputs standard normal)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {}
        for spec in inputs:
            dims = [1 if (d is None and i == 0) else d for i, d in enumerate(spec.shape)]
            if None in dims:
                raise DataError(
                    f"input '{spec.name}' has dynamic dimensions {shape_text(spec.shape)}",
                    "give validation or calibration data so edgekit knows the shapes to test",
                )
            dtype = np.dtype(spec.dtype)
            if np.issubdtype(dtype, np.floating):
                feed[spec.name] = rng.standard_normal(dims).astype(dtype)
            elif dtype == np.bool_:
                feed[spec.name] = rng.integers(0, 2, dims).astype(bool)
            else:
                feed[spec.name] = rng.integers(0, 10, dims).astype(dtype)
        feeds.append(feed)
    return feeds
