"""Every Keras route x precision on tiny CNNs trained on sklearn's digits, checked against the source."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import metrics
from edgekit.errors import ConversionError
from edgekit.options import QuantScheme
from edgekit.routes import RouteRequest, find_route
from edgekit.formats.runner import open_runner
from edgekit.sources import load_source

pytestmark = pytest.mark.slow

MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "dynamic": 0.98, "int8": 0.98}
CNN_ROUTES = [
    ("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "dynamic"), ("tflite", "int8"),
    ("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"),
    ("openvino", "fp32"), ("openvino", "fp16"), ("openvino", "int8"),
]


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1400], order[1400:]
    return images[train], data.target[train], images[test], data.target[test]


def _cnn(K):
    inputs = K.Input((8, 8, 1), name="image")
    x = K.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = K.layers.BatchNormalization()(x)
    x = K.layers.ReLU()(x)
    y = K.layers.DepthwiseConv2D(3, padding="same")(x)
    y = K.layers.BatchNormalization()(y)
    x = K.layers.Add()([x, K.layers.ReLU()(y)])
    x = K.layers.MaxPooling2D()(x)
    x = K.layers.Conv2D(24, 3, padding="same", activation="relu")(x)
    x = K.layers.GlobalAveragePooling2D()(x)
    outputs = K.layers.Dense(10, activation="softmax", name="probs")(x)
    return K.Model(inputs, outputs)


def _lstm(K):
    inputs = K.Input((8, 8), name="rows")
    x = K.layers.LSTM(16)(inputs)
    outputs = K.layers.Dense(10, activation="softmax", name="probs")(x)
    return K.Model(inputs, outputs)


def _trained(K, build, digits, epochs):
    K.utils.set_random_seed(0)
    model = build(K)
    model.compile(optimizer=K.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x_train = digits[0] if len(model.inputs[0].shape) == 4 else digits[0][..., 0]
    model.fit(x_train, digits[1], epochs=epochs, batch_size=32, verbose=0)
    return load_source(model)


@pytest.fixture(scope="module")
def sources(digits):
    import keras
    import tf_keras

    return {
        "keras2": _trained(tf_keras, _cnn, digits, 15),
        "keras3": _trained(keras, _cnn, digits, 15),
    }


def _request(source, fmt, precision, tmp_path, calibration, scheme=None):
    find_route(source.framework, fmt, precision)  # the route table lists it
    return RouteRequest(
        source=source, precision=precision, scheme=scheme or QuantScheme(), calibration=calibration,
        out_dir=tmp_path, stem=f"model_{precision}",
    )


def _convert(source, fmt, precision, tmp_path, calibration, scheme=None):
    request = _request(source, fmt, precision, tmp_path, calibration, scheme)
    output = find_route(source.framework, fmt, precision).load()(request)
    for file in output.files:
        assert file.parent == tmp_path and file.exists()
    return output


def _calibration(digits, input_name, rank=4, count=300):
    images = digits[0][:count] if rank == 4 else digits[0][:count, ..., 0]
    return [{input_name: image[None]} for image in images]


def _parity(source, output, fmt, x_test, y_test):
    name = source.spec.inputs[0].name
    reference = source.predict({name: x_test})["probs"]
    runner = open_runner(output.path, fmt)
    if output.inputs and output.inputs[0].shape[0] == 1:  # a static batch of 1: one sample at a time
        # the runner resets a fused TFLite LSTM's state variables after every call
        got = np.concatenate([runner.run({name: x[None]})["probs"] for x in x_test])
    else:
        got = runner.run({name: x_test})["probs"]
    got = got.astype(np.float32)
    return {
        "cosine": metrics.cosine(reference, got),
        "max_abs": metrics.max_abs_error(reference, got),
        "top1": metrics.top1_agreement(reference, got),
        "source_acc": metrics.top1_accuracy(reference, y_test),
        "acc": metrics.top1_accuracy(got, y_test),
    }


@pytest.mark.parametrize("framework", ["keras2", "keras3"])
@pytest.mark.parametrize(("fmt", "precision"), CNN_ROUTES)
def test_cnn_route(sources, digits, tmp_path, framework, fmt, precision):
    source = sources[framework]
    calibration = _calibration(digits, "image") if precision == "int8" else []
    output = _convert(source, fmt, precision, tmp_path, calibration)
    metrics = _parity(source, output, fmt, digits[2], digits[3])
    print(framework, fmt, precision, metrics)
    assert metrics["source_acc"] > 0.85, "the digits model did not train"
    assert metrics["cosine"] >= MIN_COSINE[precision], metrics
    if precision in ("fp32", "fp16"):
        assert metrics["top1"] >= 0.99, metrics
    else:
        assert metrics["top1"] >= 0.95, metrics
        assert metrics["acc"] >= metrics["source_acc"] - 0.02, metrics
    if fmt == "tflite":
        assert [s.name for s in output.outputs] == ["probs"] and [s.name for s in output.inputs] == ["image"]
        assert output.inputs[0].shape == (None, 8, 8, 1) and output.inputs[0].layout == "NHWC"


@pytest.mark.parametrize(
    "scheme",
    [
        QuantScheme(io_dtype="int8"),
        QuantScheme(io_dtype="uint8", per_channel=False),
        QuantScheme(activations="int16"),
    ],
    ids=["int8-io", "uint8-io-per-tensor", "int16-activations"],
)
def test_tflite_int8_schemes(sources, digits, tmp_path, scheme):
    source = sources["keras3"]
    output = _convert(source, "tflite", "int8", tmp_path, _calibration(digits, "image"), scheme)
    spec = output.inputs[0]
    if scheme.io_dtype == "float32":
        assert spec.dtype == "float32"
    else:
        assert spec.dtype == scheme.io_dtype and spec.scale and spec.zero_point is not None
        assert output.outputs[0].dtype == scheme.io_dtype and output.outputs[0].scale
    metrics = _parity(source, output, "tflite", digits[2], digits[3])
    print(scheme, metrics)
    assert metrics["cosine"] >= 0.98 and metrics["acc"] >= metrics["source_acc"] - 0.02, metrics


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_tflite_is_deterministic(sources, digits, tmp_path, precision):
    calibration = _calibration(digits, "image") if precision == "int8" else []
    for framework in ("keras2", "keras3"):
        files = []
        for attempt in ("first", "second"):
            folder = tmp_path / framework / attempt
            folder.mkdir(parents=True)
            files.append(_convert(sources[framework], "tflite", precision, folder, calibration).path)
        assert files[0].read_bytes() == files[1].read_bytes(), framework


@pytest.fixture(scope="module")
def lstm_sources(digits):
    import keras
    import tf_keras

    return {"keras2": _trained(tf_keras, _lstm, digits, 8), "keras3": _trained(keras, _lstm, digits, 8)}


@pytest.mark.parametrize("framework", ["keras2", "keras3"])
@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_lstm_fp32(lstm_sources, digits, tmp_path, framework, fmt):
    source = lstm_sources[framework]
    output = _convert(source, fmt, "fp32", tmp_path, [])
    metrics = _parity(source, output, fmt, digits[2][..., 0], digits[3])
    print(framework, fmt, "lstm", metrics, output.notes)
    if fmt == "tflite":
        assert output.inputs[0].shape == (1, 8, 8)  # TFLite needs a static batch for recurrent layers
        assert any(n.startswith("stateful") for n in output.notes) == (framework == "keras2")
    assert metrics["source_acc"] > 0.8, "the LSTM did not train"
    assert metrics["cosine"] >= 0.9999 and metrics["top1"] >= 0.99, metrics


def test_unsupported_op_is_named(tmp_path):
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((3, 3), name="m")
    det = tf_keras.layers.Reshape((1,))(tf.linalg.det(inputs))
    source = load_source(tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="out")(det)))
    for fmt in ("tflite", "openvino"):
        with pytest.raises(ConversionError, match="MatrixDeterminant"):
            _convert(source, fmt, "fp32", tmp_path, [])
