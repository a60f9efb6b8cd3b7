"""Calibration/evaluation data: every accepted form, checked on the first sample, hostile files refused."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgekit.data import load_feeds, synthetic_feeds
from edgekit.errors import DataError
from edgekit.specs import TensorSpec

IMAGE = (TensorSpec(name="image", shape=(None, 8, 8, 1), dtype="float32", layout="NHWC"),)
TWO = (
    TensorSpec(name="audio", shape=(None, 16), dtype="float32"),
    TensorSpec(name="sr", shape=(), dtype="int64", layout="scalar"),
)


def test_array_rows_become_batches_of_one():
    feeds = load_feeds(np.zeros((5, 8, 8, 1), np.float64), IMAGE)
    assert len(feeds) == 5 and feeds[0]["image"].shape == (1, 8, 8, 1) and feeds[0]["image"].dtype == np.float32


def test_iterable_of_batches_fed_as_is_and_limit():
    batches = (np.ones((4, 8, 8, 1), np.float32) for _ in range(10))
    feeds = load_feeds(batches, IMAGE, limit=3)
    assert len(feeds) == 3 and feeds[0]["image"].shape == (4, 8, 8, 1)


def test_npy_and_npz_by_input_name(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 1), np.float32))
    assert len(load_feeds(tmp_path / "x.npy", IMAGE)) == 3
    np.savez(tmp_path / "two.npz", audio=np.zeros((4, 16), np.float32), sr=np.array(16000))
    feeds = load_feeds(str(tmp_path / "two.npz"), TWO)
    assert len(feeds) == 4 and feeds[2]["sr"].shape == () and int(feeds[2]["sr"]) == 16000
    assert feeds[2]["audio"].shape == (1, 16)


def test_image_folder_is_resized_and_scaled(tmp_path):
    for index in range(3):
        Image.fromarray(np.full((20, 20), 255 if index else 0, np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    feeds = load_feeds(tmp_path, IMAGE)
    assert len(feeds) == 3 and feeds[0]["image"].shape == (1, 8, 8, 1)
    assert feeds[0]["image"].max() == 0.0 and feeds[1]["image"].min() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.zeros((0, 8, 8, 1), np.float32), "the calibration data is empty"),
        (np.zeros((3, 7, 8, 1), np.float32), "input 'image' has shape (1, 7, 8, 1), the model expects (?, 8, 8, 1)"),
        (np.zeros((3, 8, 8, 1), np.int32), "dtype int32, the model expects float32"),
        (np.full((3, 8, 8, 1), np.nan, np.float32), "contains NaN or Inf"),
        ([], "the calibration data is empty"),
        (42, "unsupported type int"),
    ],
)
def test_bad_data_gets_a_clear_error(data, words):
    with pytest.raises(DataError) as info:
        load_feeds(data, IMAGE)
    assert words in info.value.message


def test_multi_input_names_missing_and_extra():
    with pytest.raises(DataError, match="missing sr; unexpected rate"):
        load_feeds({"audio": np.zeros((2, 16), np.float32), "rate": np.array(1)}, TWO)
    with pytest.raises(DataError, match="2 inputs .* single array"):
        load_feeds(np.zeros((2, 16), np.float32), TWO)


def test_pickled_npy_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        load_feeds(path, IMAGE)


def test_truncated_npy_is_refused_before_allocation(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((100, 8, 8, 1), np.float32))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="declares 25600 bytes of data but holds"):
        load_feeds(path, IMAGE)


def test_npz_with_path_traversal_member_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../image.npy", b"x")
    with pytest.raises(DataError, match="unexpected member"):
        load_feeds(path, IMAGE)


def test_text_file_is_not_data(tmp_path):
    path = tmp_path / "calib.npy"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError, match="not a .npy or .npz"):
        load_feeds(path, IMAGE)


def test_synthetic_feeds_follow_specs():
    feeds = synthetic_feeds(TWO, 2)
    assert feeds[0]["audio"].shape == (1, 16) and feeds[0]["sr"].dtype == np.int64 and feeds[0]["sr"].shape == ()
    with pytest.raises(DataError, match="dynamic dimensions"):
        synthetic_feeds((TensorSpec(name="x", shape=(1, None), dtype="float32"),), 1)
