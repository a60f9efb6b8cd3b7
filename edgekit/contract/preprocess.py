"""Raw data made into feeds as a contract says: images with Pillow (color order, resize policy, value range or
mean/std, layout, dtype) and WAV files with soundfile (sample rate checked, mixed to mono, framed).

A labelled raw data set is a folder of class folders (classes: the folder names sorted, label = index), each
holding images or WAV files (sniffed by content: other files are skipped).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit.contract.schema import Contract, InputContract
from edgekit.errors import ContractError, DataError

MAX_FILES = 100_000
MAX_AUDIO_SECONDS = 600


def labelled_folder(folder: Path, contract: Contract) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feeds (one array per input, stacked) and labels of a class-folder data set, preprocessed per ``contract``."""
    if len(contract.inputs) != 1:
        raise ContractError(f"a folder of raw files feeds a model with one input; this contract has {len(contract.inputs)}",
                            "give an .npz keyed by input name")
    item = contract.inputs[0]
    classes = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder} has no class folders", "put the files of each class in a folder named after it")
    read = image_tensor if item.kind == "image" else audio_tensor if item.kind == "audio" else None
    if read is None:
        raise ContractError(f"{contract.line('inputs', item.name, 'kind')}: raw files feed image or audio inputs only",
                            "give the data as an .npz of arrays")
    samples, labels = [], []
    for index, sub in enumerate(classes):
        for file in sorted(p for p in sub.rglob("*") if p.is_file())[:MAX_FILES]:
            tensor = read(file, item, contract)
            if tensor is not None:
                samples.append(tensor)
                labels.append(index)
    if not samples:
        raise DataError(f"no {item.kind} files found in the class folders of {folder}", "put PNG/JPEG images or WAV files there")
    return {item.name: np.stack(samples)}, np.asarray(labels, dtype=np.int64)


def _size(item: InputContract, contract: Contract) -> tuple[int, int, int, bool]:
    """Height, width, channels and channels-first of an image input."""
    shape, layout = item.shape, item.layout
    if shape is None or len(shape) != 4 or layout not in ("NCHW", "NHWC"):
        raise ContractError(f"{contract.line('inputs', item.name, 'layout')} with shape {shape}: not an image tensor edgekit "
                            "can size", "declare layout NCHW or NHWC and a fixed shape")
    _, a, b, c = shape
    height, width, channels = (b, c, a) if layout == "NCHW" else (a, b, c)
    if None in (height, width, channels):
        raise ContractError(f"{contract.line('inputs', item.name, 'shape')}: images need a fixed height and width",
                            "convert with --input-shape to fix them")
    return int(height), int(width), int(channels), layout == "NCHW"


def image_tensor(file: Path, item: InputContract, contract: Contract) -> np.ndarray | None:
    """One image file as the input tensor (without the batch axis), or None when the file is not an image."""
    from PIL import Image

    height, width, channels, first = _size(item, contract)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(file) as image:
                mode = "L" if channels == 1 else "RGB"
                pixels = _resized(image.convert(mode), width, height, item.resize or "stretch")
        except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            return None
    array = np.asarray(pixels, dtype=np.float32).reshape(height, width, channels)
    if item.color == "BGR":
        array = array[..., ::-1]
    array = normalized(array, item)
    array = array.transpose(2, 0, 1) if first else array
    return np.ascontiguousarray(array.astype(item.dtype or "float32"))


def _resized(image, width: int, height: int, policy: str):
    from PIL import Image, ImageOps

    if image.size == (width, height):
        return image
    if policy == "center_crop":
        return ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)
    if policy == "letterbox":
        return ImageOps.pad(image, (width, height), Image.Resampling.BILINEAR)
    return image.resize((width, height), Image.Resampling.BILINEAR)


def normalized(pixels: np.ndarray, item: InputContract) -> np.ndarray:
    """Pixels in [0, 255] (channels last, float32) mapped as the contract says (see ``edgekit.contract.schema``)."""
    unit = pixels / np.float32(255.0)
    if item.mean is not None and item.std is not None:
        return ((unit - np.asarray(item.mean, np.float32)) / np.asarray(item.std, np.float32)).astype(np.float32)
    low, high = item.range or (0.0, 1.0)
    if (low, high) == (0.0, 1.0):
        return unit
    return (unit * np.float32(high - low) + np.float32(low)).astype(np.float32)


def audio_tensor(file: Path, item: InputContract, contract: Contract) -> np.ndarray | None:
    """One WAV (or other soundfile-readable) file as the input tensor, or None when it is not audio."""
    import soundfile

    try:
        info = soundfile.info(str(file))
    except (RuntimeError, soundfile.LibsndfileError):
        return None
    if item.sample_rate is not None and info.samplerate != item.sample_rate:
        raise ContractError(f"{file.name} is sampled at {info.samplerate} Hz, but "
                            f"{contract.line('inputs', item.name, 'sample_rate')}", "resample the recordings first")
    if info.frames > MAX_AUDIO_SECONDS * info.samplerate:
        raise DataError(f"{file.name} is {info.frames / info.samplerate:.0f} s long", f"give clips under {MAX_AUDIO_SECONDS} s")
    samples, _ = soundfile.read(str(file), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    length = item.frame_size or _length(item)
    if length is not None:
        mono = np.pad(mono[:length], (0, max(0, length - len(mono))))
    if item.range is not None and item.range != (-1.0, 1.0):
        low, high = item.range
        mono = (mono + 1.0) / 2.0 * (high - low) + low
    shape = item.shape[1:] if item.shape else (len(mono),)
    if None in shape or int(np.prod(shape)) != len(mono):
        return mono.astype(item.dtype or "float32")
    return mono.reshape(shape).astype(item.dtype or "float32")


def _length(item: InputContract) -> int | None:
    if item.shape and len(item.shape) >= 2 and all(d is not None for d in item.shape[1:]):
        return int(np.prod(item.shape[1:]))
    return None
