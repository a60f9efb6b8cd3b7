"""Feeds and raw files held against a contract (no model needed): every refusal names the contract line."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.contract.checks import check_arrays
from edgekit.contract.infer import contradictions, resolve
from edgekit.contract.io import load_contract
from edgekit.contract.preprocess import audio_tensor, image_tensor, labelled_folder
from edgekit.contract.schema import Contract, InputContract, OutputContract
from edgekit.errors import ContractError
from edgekit.specs import ModelSource, TensorSpec

IMAGE = InputContract(name="image", kind="image", layout="NHWC", shape=(None, 4, 6, 3), dtype="float32", color="RGB",
                      range=(-1.0, 1.0))
CONTRACT = Contract(inputs=(IMAGE,), outputs=(OutputContract(name="p", kind="probabilities"),))


def test_values_outside_the_range_are_refused_with_the_line():
    data = np.zeros((5, 4, 6, 3), np.float32)
    data[3, 0, 0, 0] = 255.0
    with pytest.raises(ContractError) as caught:
        check_arrays({"image": data}, CONTRACT)
    assert caught.value.message == ("dataset sample 3 for input 'image' holds values 0 .. 255 (1 of 5 samples outside "
                                    "-1 .. 1): it breaks the contract line inputs.image.range = [-1.0, 1.0]")


def test_values_within_the_range_pass():
    check_arrays({"image": np.full((2, 4, 6, 3), 1.005, np.float32)}, CONTRACT)  # within 1% of the span


def test_an_nchw_feed_into_an_nhwc_contract_names_the_layout():
    with pytest.raises(ContractError, match=r"shape \(3, 4, 6\): it breaks the contract line inputs\.image\.layout = "
                                            r"\"NHWC\" \(shape \[null, 4, 6, 3\]\)"):
        check_arrays({"image": np.zeros((2, 3, 4, 6), np.float32)}, CONTRACT)


def test_a_wrong_shape_and_a_wrong_dtype_are_refused():
    with pytest.raises(ContractError, match=r"inputs\.image\.shape = \[null, 4, 6, 3\]"):
        check_arrays({"image": np.zeros((2, 5, 6, 3), np.float32)}, CONTRACT)
    with pytest.raises(ContractError, match=r"is int32: it breaks the contract line inputs\.image\.dtype = \"float32\""):
        check_arrays({"image": np.zeros((2, 4, 6, 3), np.int32)}, CONTRACT)


def test_mean_std_give_the_allowed_range():
    item = InputContract(name="x", kind="image", mean=(0.5,), std=(0.25,))
    assert item.value_range() == (-2.0, 2.0)
    with pytest.raises(ValueError, match="mean and std go together"):
        InputContract(name="x", mean=(0.5,))


def _png(path, pixels: np.ndarray, mode: str) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)


def test_images_are_preprocessed_as_the_contract_says(tmp_path):
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[..., 0], pixels[..., 2] = 255, 51  # red 255, blue 51
    _png(tmp_path / "a.png", pixels, "RGB")
    rgb = image_tensor(tmp_path / "a.png", IMAGE, CONTRACT)
    np.testing.assert_allclose(rgb[0, 0], [1.0, -1.0, -0.6], atol=1e-6)  # [-1, 1]
    bgr = image_tensor(tmp_path / "a.png", IMAGE.model_copy(update={"color": "BGR", "range": (0.0, 255.0)}), CONTRACT)
    np.testing.assert_allclose(bgr[0, 0], [51.0, 0.0, 255.0], atol=1e-4)
    nchw = IMAGE.model_copy(update={"layout": "NCHW", "shape": (1, 3, 4, 6), "mean": (0.5, 0.5, 0.5),
                                    "std": (0.5, 0.5, 0.5), "range": None})
    chw = image_tensor(tmp_path / "a.png", nchw, CONTRACT)
    assert chw.shape == (3, 4, 6)
    np.testing.assert_allclose(chw[:, 0, 0], [1.0, -1.0, -0.6], atol=1e-6)


def test_a_larger_picture_is_letterboxed_or_cropped(tmp_path):
    pixels = np.full((8, 24, 3), 255, np.uint8)  # 3:1, white
    _png(tmp_path / "wide.png", pixels, "RGB")
    boxed = image_tensor(tmp_path / "wide.png", IMAGE.model_copy(update={"resize": "letterbox", "range": (0.0, 1.0)}), CONTRACT)
    assert boxed[:, 0, 0].tolist() == [0.0, 1.0, 1.0, 0.0]  # 24x8 scaled to 6x2, bars above and below
    assert boxed[1, :, 0].tolist() == [1.0] * 6
    cropped = image_tensor(tmp_path / "wide.png", IMAGE.model_copy(update={"resize": "center_crop", "range": (0.0, 1.0)}), CONTRACT)
    assert cropped.min() == 1.0


def test_a_class_folder_gives_labels_by_folder_name(tmp_path):
    for label, value in (("cat", 0), ("dog", 255)):
        _png(tmp_path / label / "1.png", np.full((4, 6, 3), value, np.uint8), "RGB")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    data, labels = labelled_folder(tmp_path, CONTRACT)
    assert labels.tolist() == [0, 1]
    assert data["image"].shape == (2, 4, 6, 3)
    assert data["image"][1].min() == 1.0 and data["image"][0].max() == -1.0


def test_wav_files_are_framed_and_their_rate_checked(tmp_path):
    import soundfile

    item = InputContract(name="audio", kind="audio", shape=(1, 16000), dtype="float32", sample_rate=16000)
    contract = Contract(inputs=(item,))
    soundfile.write(tmp_path / "short.wav", np.full(8000, 0.5, np.float32), 16000)
    clip = audio_tensor(tmp_path / "short.wav", item, contract)
    assert clip.shape == (16000,) and clip[:8000].min() == pytest.approx(0.5, abs=1e-4) and clip[8000:].max() == 0.0
    soundfile.write(tmp_path / "fast.wav", np.zeros(4410, np.float32), 44100)
    with pytest.raises(ContractError, match=r"fast.wav is sampled at 44100 Hz, but inputs\.audio\.sample_rate = 16000"):
        audio_tensor(tmp_path / "fast.wav", item, contract)


SOURCE = ModelSource(framework="onnx", kind="onnx", sha256="ab" * 32, task="classifier",
                     inputs=(TensorSpec(name="image", shape=(None, 8, 8, 1), dtype="float32", layout="NHWC"),),
                     outputs=(TensorSpec(name="logits", shape=(None, 10), dtype="float32"),))


def test_inference_fills_what_the_contract_leaves_out():
    feeds = [{"image": np.linspace(0, 255, 64, dtype=np.float32).reshape(1, 8, 8, 1)}]
    contract = resolve(None, SOURCE, feeds)
    image = contract.inputs[0]
    assert (image.kind, image.color, image.layout, image.range) == ("image", "GRAY", "NHWC", (0.0, 255.0))
    assert image.origin["range"] == "the build's data: 1 samples, values 0 .. 255"
    assert contract.outputs[0].kind == "logits" and contract.source_sha256 == "ab" * 32


def test_a_declared_range_the_calibration_data_contradict_is_an_error():
    declared = load_contract({"inputs": [{"name": "image", "range": [0, 1]}]})
    feeds = [{"image": np.full((1, 8, 8, 1), 200.0, np.float32)}, {"image": np.zeros((1, 8, 8, 1), np.float32)}]
    with pytest.raises(ContractError) as caught:
        resolve(declared, SOURCE, feeds)
    assert "inputs.image.range = [0.0, 1.0] allows values 0 .. 1, but the build's data (2 samples) hold 0 .. 200" \
        in caught.value.message


def test_contradicting_color_layout_and_labels_are_listed():
    declared = load_contract({"inputs": [{"name": "image", "color": "RGB", "layout": "NCHW"}],
                              "outputs": [{"name": "logits", "labels": ["a", "b"]}]})
    problems = contradictions(declared, SOURCE, {}, 0)
    assert problems == ['inputs.image.color = "RGB" but the input has 1 channel(s)',
                        'inputs.image.layout = "NCHW" but the model takes NHWC',
                        "outputs.logits.labels has 2 labels but the output has 10 classes"]


def test_an_unknown_input_name_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("inputs:\n  - name: img\n")
    with pytest.raises(ContractError, match="the contract's inputs name 'img', which the model does not have"):
        resolve(load_contract(tmp_path / "c.yaml"), SOURCE, [])


def test_an_invalid_contract_file_names_the_field(tmp_path):
    (tmp_path / "c.yaml").write_text("inputs:\n  - name: image\n    colour: RGB\n")
    with pytest.raises(ContractError, match="not a valid contract"):
        load_contract(tmp_path / "c.yaml")
    (tmp_path / "bad.yaml").write_text("!!python/object:os.system {}\n")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(tmp_path / "bad.yaml")


@pytest.mark.slow
def test_a_keras_rescaling_layer_says_the_model_takes_0_255_pixels(tmp_path):
    import keras

    from edgekit.contract.keras_hints import input_hints

    inputs = keras.Input((8, 8, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    keras.Model(inputs, outputs).save(tmp_path / "m.keras")
    hints = input_hints(tmp_path / "m.keras")
    assert hints == {"pixels": {"range": (0.0, 255.0), "origin": "Keras Rescaling layer (scale 0.00784314, offset -1)"}}
    source = SOURCE.model_copy(update={"inputs": (TensorSpec(name="pixels", shape=(None, 8, 8, 3), dtype="float32",
                                                             layout="NHWC"),)})
    contract = resolve(None, source, [], hints=hints)
    assert contract.inputs[0].range == (0.0, 255.0)
    assert contract.inputs[0].origin["range"].startswith("Keras Rescaling layer")
