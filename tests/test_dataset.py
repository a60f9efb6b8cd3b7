"""One data convention for every data option (calibration, validation, datasets): labelled .npz files feed any
of them, a preview tells shapes, ranges and the label histogram, labelled validation data carries its labels."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgekit import DataPreview, preview_data
from edgekit.data import load_feeds, split_labels
from edgekit.dataset import labelled_validation
from edgekit.errors import DataError
from edgekit.profiling.accuracy import load_labelled
from edgekit.specs import TensorSpec

IMAGE = (TensorSpec(name="image", shape=(None, 8, 8, 1), dtype="float32", layout="NHWC"),)
PROBS = (TensorSpec(name="probabilities", shape=(None, 10), dtype="float32"),)
TWO = (TensorSpec(name="audio", shape=(None, 16), dtype="float32"), TensorSpec(name="gain", shape=(None, 1), dtype="float32"))


def _labelled(tmp_path, n: int = 30):
    x = np.linspace(0, 1, n * 64, dtype=np.float32).reshape(n, 8, 8, 1)
    y = np.arange(n) % 3
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    return tmp_path / "xy.npz", x, y


def test_an_xy_npz_is_calibration_or_validation_data_too(tmp_path):
    path, x, _ = _labelled(tmp_path)
    feeds = load_feeds(path, IMAGE, what="validation")  # refused before: "unexpected x, y"
    assert len(feeds) == 30 and np.array_equal(feeds[4]["image"][0], x[4])
    feeds, labels = load_labelled(path, IMAGE)  # the profiling dataset reads the same file the same way
    assert len(feeds) == 30 and labels.tolist()[:4] == [0, 1, 2, 0]


def test_the_npz_conventions_split_the_same_way():
    audio, gain, y = np.zeros((4, 16), np.float32), np.ones((4, 1), np.float32), np.arange(4)
    assert split_labels({"x_audio": audio, "x_gain": gain, "y": y}, TWO)[0].keys() == {"audio", "gain"}
    data, labels = split_labels({"audio": audio, "gain": gain, "labels": y}, TWO)
    assert set(data) == {"audio", "gain"} and labels.tolist() == [0, 1, 2, 3]
    data, labels = split_labels({"only": audio}, (TWO[0],))
    assert data is audio and labels is None
    named_y = (TensorSpec(name="y", shape=(None, 16), dtype="float32"),)  # an input called y is an input
    data, labels = split_labels({"y": audio}, named_y)
    assert labels is None and set(data) == {"y"}  # fed by input name


def test_preview_reports_shapes_ranges_and_the_label_histogram(tmp_path):
    path, x, _ = _labelled(tmp_path)
    preview = preview_data(path)
    assert isinstance(preview, DataPreview) and preview.kind == "npz" and preview.samples == 30 and preview.labelled
    arrays = {a.name: a for a in preview.arrays}
    assert arrays["x"].shape == (30, 8, 8, 1) and arrays["x"].dtype == "float32"
    assert (arrays["x"].minimum, arrays["x"].maximum) == (0.0, 1.0) and arrays["x"].mean == pytest.approx(0.5)
    assert preview.label_key == "y" and preview.labels == {"0": 10, "1": 10, "2": 10}
    np.save(tmp_path / "plain.npy", x[-7:] * 255)
    plain = preview_data(tmp_path / "plain.npy")
    assert (plain.kind, plain.samples, plain.labelled, plain.arrays[0].maximum) == ("npy", 7, False, 255.0)
    (tmp_path / "notes.npz").write_text("not an archive")
    with pytest.raises(DataError, match="not a .npy or .npz"):
        preview_data(tmp_path / "notes.npz")


def test_class_folders_are_labelled_data(tmp_path):
    root = tmp_path / "classes"
    for name, count in (("cat", 3), ("dog", 5)):
        (root / name).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(np.full((12, 12), 40 * index, np.uint8)).save(root / name / f"{index}.png")
    preview = preview_data(root)
    assert (preview.kind, preview.samples, preview.label_key, preview.labels) == ("class folders", 8, "folders",
                                                                                 {"dog": 5, "cat": 3})
    labelled = labelled_validation(str(root), IMAGE, PROBS)
    assert labelled.y.tolist() == [0, 0, 0, 1, 1, 1, 1, 1] and labelled.x["image"].shape == (8, 8, 8, 1)


def test_labelled_validation_needs_labels_and_one_output(tmp_path):
    path, x, y = _labelled(tmp_path)
    labelled = labelled_validation(str(path), IMAGE, PROBS)
    assert labelled.task == "classification" and np.array_equal(labelled.y, y) and labelled.x["image"].shape == x.shape
    np.savez(tmp_path / "unlabelled.npz", x=x)
    assert labelled_validation(str(tmp_path / "unlabelled.npz"), IMAGE, PROBS) is None
    assert labelled_validation(str(path), IMAGE, PROBS * 2) is None  # two outputs: which one has the classes?
    assert labelled_validation(x, IMAGE, PROBS) is None  # arrays carry no labels
