"""Keras 3 -> tf_keras rebuilding and structured channel surgery (no tfmot: safe in the pytest process)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import InvalidOptionError
from edgekit.optimize.keras_channels import prune_channels
from edgekit.optimize.keras_rebuild import tf_keras_copy

pytestmark = pytest.mark.slow


def _many_layers(keras):
    """A Keras 3 functional model using every commonly rebuilt layer kind."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4), name="conv")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.ReLU()(y)
    x = keras.layers.Add()([x, y])
    z = keras.layers.SeparableConv2D(8, 3, padding="same", name="separable")(x)
    x = keras.layers.Concatenate()([x, z])
    x = keras.layers.AveragePooling2D(1)(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D()(x))
    x = keras.layers.Dropout(0.2)(keras.layers.Concatenate()([x, pooled]))
    x = keras.layers.Activation("relu")(keras.layers.Dense(32)(x))
    x = keras.layers.Conv1D(4, 3)(keras.layers.Reshape((32, 1))(x))
    x = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    return keras.Model(inputs, keras.layers.Softmax(name="probs")(x))


def _trained(keras, model, digits):
    keras.utils.set_random_seed(0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(digits[0][:256], digits[2][:256], epochs=1, verbose=0)
    return model


def _max_error(a, b, x) -> float:
    return float(np.max(np.abs(np.asarray(a(x, training=False)) - np.asarray(b(x, training=False)))))


def test_keras3_functional_and_sequential_models_rebuild_as_tf_keras(digits):
    import keras

    x = digits[1][:64]
    functional = _trained(keras, _many_layers(keras), digits)
    weights = [w.copy() for w in functional.get_weights()]
    rebuilt = tf_keras_copy(functional)
    assert type(rebuilt).__module__.startswith("tf_keras")
    assert _max_error(functional, rebuilt, x) < 1e-5
    assert rebuilt.output_names == ["probs"] and rebuilt.count_params() == functional.count_params()
    assert all(np.array_equal(a, b) for a, b in zip(weights, functional.get_weights(), strict=True))

    sequential = _trained(keras, keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ]), digits)
    assert _max_error(sequential, tf_keras_copy(sequential), x) < 1e-5


def test_layers_without_tf_keras_equivalent_are_named():
    import keras

    class Scale(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    doubled = keras.layers.Lambda(lambda t: t * 2.0, name="double")(hidden)
    model = keras.Model(inputs, Scale(name="scale")(doubled))
    with pytest.raises(InvalidOptionError, match=r"no tf_keras equivalent.*: double \(Lambda\), scale \(Scale\)"):
        tf_keras_copy(model)


def test_channel_surgery_removes_exactly_the_weakest_channels():
    """Channels made dead (zero filters, negative bias before a ReLU) are the ones removed, and the narrower
    model computes exactly what the original did, through Add, Flatten and Concatenate."""
    import tf_keras as K

    K.utils.set_random_seed(0)
    inputs = K.Input((8, 8, 1), name="image")
    a = K.layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(inputs)
    b = K.layers.Conv2D(8, 3, padding="same", activation="relu", name="b")(a)
    x = K.layers.Add()([a, b])
    pooled = K.layers.GlobalAveragePooling2D()(x)
    x = K.layers.Concatenate()([K.layers.Flatten()(K.layers.MaxPooling2D()(x)), pooled])
    x = K.layers.Dense(6, activation="relu", name="d")(x)
    model = K.Model(inputs, K.layers.Dense(10, activation="softmax", name="out")(x))
    for name, dead in (("a", np.s_[1::2]), ("b", np.s_[1::2]), ("d", np.s_[3:])):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[..., dead], bias[dead] = 0.0, -1.0
        model.get_layer(name).set_weights([kernel, bias])
    pruned = prune_channels(model, 0.5)
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    assert _max_error(model, pruned, x) < 1e-6
    shapes = {layer.name: [w.shape for w in layer.get_weights()] for layer in pruned.layers if layer.weights}
    assert shapes == {"a": [(3, 3, 1, 4), (4,)], "b": [(3, 3, 4, 4), (4,)], "d": [(68, 3), (3,)], "out": [(3, 10), (10,)]}


def test_channel_surgery_follows_depthwise_batchnorm_and_separable_layers(digits):
    import keras

    model = tf_keras_copy(_trained(keras, _many_layers(keras), digits))
    pruned = prune_channels(model, 0.5)
    widths = {layer.name: layer.get_weights()[0].shape for layer in pruned.layers if layer.weights}
    assert widths["conv"][-1] == 8 and widths["depthwise"][-2] == 8 and widths["bn"] == (8,)
    assert widths["separable"] == (3, 3, 8, 1)
    assert pruned.output_shape == model.output_shape == (None, 10)
    assert pruned.count_params() < 0.6 * model.count_params()
    assert np.isfinite(np.asarray(pruned(digits[1][:8]))).all()


def test_a_model_with_no_removable_channels_is_refused():
    import tf_keras as K

    inputs = K.Input((4,), name="x")
    model = K.Model(inputs, K.layers.Dense(3, activation="softmax", name="out")(inputs))
    with pytest.raises(InvalidOptionError, match="no channels of .* can be removed"):
        prune_channels(model, 0.5)
