"""Keras sources: every file kind loads with named specs, unsafe and damaged files are refused."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from edgekit.errors import ModelFileError, UnsafeModelError
from edgekit.sources import keras_safety, load_source
from edgekit.sources.base import sha256_of

X = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)


def _cnn(K):
    inputs = K.Input((8, 8, 1), name="image")
    x = K.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = K.layers.BatchNormalization()(x)
    x = K.layers.GlobalAveragePooling2D()(x)
    outputs = K.layers.Dense(10, activation="softmax", name="probs")(x)
    return K.Model(inputs, outputs)


def _marker_model(K, marker, monkeypatch):
    """A model whose Lambda touches ``marker`` whenever it is called (as Keras does while loading)."""
    monkeypatch.setenv("EDGEKIT_TEST_MARKER", str(marker))
    inputs = K.Input((4,), name="x")
    # self-contained code (no globals, no defaults): it touches the file named by $EDGEKIT_TEST_MARKER
    touch = lambda t: (__import__("pathlib").Path(__import__("os").environ["EDGEKIT_TEST_MARKER"]).touch(), t * 2.0)[1]
    touched = K.layers.Lambda(touch)(inputs)
    return K.Model(inputs, K.layers.Dense(2, name="out")(touched))


@pytest.fixture(scope="module")
def keras2():
    import tf_keras

    return tf_keras


@pytest.fixture(scope="module")
def keras3():
    import keras

    return keras


@pytest.fixture(scope="module")
def files(tmp_path_factory, keras2, keras3):
    folder = tmp_path_factory.mktemp("keras")
    model2, model3 = _cnn(keras2), _cnn(keras3)
    model3(X)
    paths = {
        "h5": folder / "model.h5",
        "savedmodel": folder / "saved",
        "keras2-file": folder / "model2.keras",
        "keras3-file": folder / "model3.keras",
    }
    model2.save(paths["h5"])
    model2.save(paths["savedmodel"], save_format="tf")
    model2.save(paths["keras2-file"])
    model3.save(paths["keras3-file"])
    return paths, {"keras2": model2, "keras3": model3}


@pytest.mark.parametrize(
    ("key", "framework", "kind"),
    [
        ("h5", "keras2", "h5"),
        ("savedmodel", "keras2", "savedmodel"),
        ("keras2-file", "keras2", "keras-file"),
        ("keras3-file", "keras3", "keras-file"),
    ],
)
def test_file_loads_with_named_specs(files, key, framework, kind):
    paths, models = files
    source = load_source(paths[key])
    spec = source.spec
    assert (spec.framework, spec.kind, spec.task) == (framework, kind, "classifier")
    assert spec.sha256 == sha256_of(paths[key]) and spec.size_bytes > 0
    assert [(t.name, t.shape, t.dtype, t.layout) for t in spec.inputs] == [("image", (None, 8, 8, 1), "float32", "NHWC")]
    assert [(t.name, t.shape, t.layout) for t in spec.outputs] == [("probs", (None, 10), "NC")]
    got = source.predict({"image": X})["probs"]
    np.testing.assert_allclose(got, np.asarray(models[framework](X, training=False)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("framework", ["keras2", "keras3"])
def test_in_memory_model(files, framework):
    model = files[1][framework]
    source = load_source(model)
    assert (source.spec.framework, source.spec.kind, source.spec.path, source.spec.sha256) == (framework, "in-memory", None, None)
    assert source.input_names == ["image"] and source.output_names == ["probs"]
    assert source.predict({"image": X})["probs"].shape == (3, 10)


def test_multi_input_multi_output(keras3):
    a, b = keras3.Input((3,), name="a"), keras3.Input((2,), name="b")
    joined = keras3.layers.Concatenate()([a, b])
    model = keras3.Model([a, b], [keras3.layers.Dense(4, name="head1")(joined), keras3.layers.Dense(1, name="head2")(joined)])
    source = load_source(model)
    assert source.input_names == ["a", "b"] and source.output_names == ["head1", "head2"]
    out = source.predict({"a": np.ones((2, 3), np.float32), "b": np.ones((2, 2), np.float32)})
    assert out["head1"].shape == (2, 4) and out["head2"].shape == (2, 1)
    assert source.spec.task == "other"


def test_h5_lambda_refused_without_running_it(tmp_path, keras2, monkeypatch):
    marker = tmp_path / "marker"
    path = tmp_path / "lambda.h5"
    _marker_model(keras2, marker, monkeypatch).save(path)
    marker.unlink()  # building the model ran the Lambda once
    with pytest.raises(UnsafeModelError) as caught:
        load_source(path)
    assert "Lambda" in caught.value.message
    assert "allow_unsafe=True" in caught.value.hint and "--allow-unsafe" in caught.value.hint
    assert not marker.exists()
    source = load_source(path, allow_unsafe=True)  # the opt-in loads it (and runs its code)
    assert marker.exists()
    assert source.predict({"x": np.ones((1, 4), np.float32)})["out"].shape == (1, 2)


def test_keras3_lambda_refused_without_running_it(tmp_path, keras3, monkeypatch):
    marker = tmp_path / "marker"
    path = tmp_path / "lambda.keras"
    _marker_model(keras3, marker, monkeypatch).save(path)
    marker.unlink()
    with pytest.raises(UnsafeModelError) as caught:
        load_source(path)
    assert "allow_unsafe=True" in caught.value.hint and "--allow-unsafe" in caught.value.hint
    assert not marker.exists()
    assert load_source(path, allow_unsafe=True).output_names == ["out"]


def test_keras3_safe_mode_is_kept_as_a_second_line(tmp_path, keras3, monkeypatch):
    path = tmp_path / "lambda.keras"
    _marker_model(keras3, tmp_path / "marker", monkeypatch).save(path)
    monkeypatch.setattr(keras_safety, "scan_config", lambda *args: None)  # Keras' own safe_mode must still refuse
    with pytest.raises(UnsafeModelError, match="safe mode"):
        load_source(path)


def test_savedmodel_lambda_refused(tmp_path, keras2, monkeypatch):
    path = tmp_path / "saved"
    _marker_model(keras2, tmp_path / "marker", monkeypatch).save(path, save_format="tf")
    with pytest.raises(UnsafeModelError, match="Lambda"):
        load_source(path)


def test_h5_custom_layer_named(tmp_path, keras2):
    class Doubler(keras2.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = keras2.Input((4,), name="x")
    path = tmp_path / "custom.h5"
    keras2.Model(inputs, Doubler()(inputs)).save(path)
    with pytest.raises(ModelFileError, match="'Doubler'"):
        load_source(path)


def test_keras3_custom_layer_named(tmp_path, keras3):
    class Tripler(keras3.layers.Layer):
        def call(self, inputs):
            return inputs * 3.0

    inputs = keras3.Input((4,), name="x")
    path = tmp_path / "custom.keras"
    keras3.Model(inputs, Tripler()(inputs)).save(path)
    with pytest.raises(ModelFileError, match="Tripler"):
        load_source(path)


@pytest.mark.parametrize("key", ["h5", "keras3-file", "keras2-file"])
def test_truncated_file_is_a_model_file_error(files, tmp_path, key):
    data = files[0][key].read_bytes()
    path = tmp_path / files[0][key].name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_source(path)


def _rewrite_archive(source, target, extra: dict[str, bytes]):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
        for name, data in extra.items():
            new.writestr(name, data)


def test_keras_archive_path_traversal_refused(files, tmp_path):
    path = tmp_path / "evil.keras"
    _rewrite_archive(files[0]["keras3-file"], path, {"../../outside.txt": b"x"})
    with pytest.raises(UnsafeModelError, match="unsafe path"):
        load_source(path)


def test_keras_archive_size_limit(files, tmp_path, monkeypatch):
    path = tmp_path / "big.keras"
    _rewrite_archive(files[0]["keras3-file"], path, {"padding.bin": bytes(200_000)})
    monkeypatch.setattr(keras_safety, "MAX_ARCHIVE_BYTES", 100_000)
    with pytest.raises(UnsafeModelError, match="limit"):
        load_source(path)


def test_keras_archive_bad_crc_refused(files, tmp_path):
    path = tmp_path / "crc.keras"
    data = bytearray(files[0]["keras3-file"].read_bytes())
    with zipfile.ZipFile(files[0]["keras3-file"]) as archive:
        info = archive.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 5] ^= 0xFF  # damage the compressed bytes of config.json
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        load_source(path)


@pytest.mark.parametrize("framework", ["keras2", "keras3"])
def test_nan_weights_refused(framework, keras2, keras3):
    K = keras2 if framework == "keras2" else keras3
    model = _cnn(K)
    layer = model.get_layer("probs")
    kernel, bias = layer.get_weights()
    kernel[0, 0] = np.nan
    layer.set_weights([kernel, bias])
    with pytest.raises(ModelFileError, match=r"weights contain NaN in layer 'probs'"):
        load_source(model)


def test_h5_without_model_config(tmp_path, files):
    path = tmp_path / "weights.weights.h5"
    files[1]["keras2"].save_weights(path)
    with pytest.raises(ModelFileError, match="weights only"):
        load_source(path)


def test_keras_file_sniffed_as_keras2(files):
    meta = json.loads(zipfile.ZipFile(files[0]["keras2-file"]).read("metadata.json"))
    assert meta["keras_version"].startswith("2.")
    assert load_source(files[0]["keras2-file"]).spec.framework == "keras2"


def test_keras3_registered_custom_layer_loads(tmp_path, keras3):
    @keras3.saving.register_keras_serializable(package="edgekit_test")
    class Halver(keras3.layers.Layer):
        def call(self, inputs):
            return inputs * 0.5

    inputs = keras3.Input((4,), name="x")
    path = tmp_path / "registered.keras"
    keras3.Model(inputs, Halver(name="half")(inputs)).save(path)
    out = load_source(path).predict({"x": np.ones((1, 4), np.float32)})
    np.testing.assert_allclose(out["half"], 0.5)
