"""Purpose-built Keras classifiers with a known int8 culprit, trained briefly on scikit-learn's digits."""
from __future__ import annotations

import numpy as np


def outlier_classifier(x_train: np.ndarray, y_train: np.ndarray, factor: float = 1000.0):
    """Digits CNN whose ``outlier`` layer has one unit scaled by ``factor`` (the next layer scaled back):
    the float function is unchanged, but that unit's outliers ruin a per-tensor int8 scale. The two
    dense layers at the end are under 2% of the multiply-accumulates."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(64, activation="relu", name="hidden")(x)
    x = keras.layers.Dense(32, activation="relu", name="outlier")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0)
    activations = keras.Model(inputs, model.get_layer("outlier").output).predict(x_train[:256], verbose=0)
    unit = int(np.argmax(activations.mean(axis=0)))  # the busiest unit: scaling it up matters
    w, b = model.get_layer("outlier").get_weights()
    w[:, unit] *= factor
    b[unit] *= factor
    model.get_layer("outlier").set_weights([w, b])
    hw, hb = model.get_layer("head").get_weights()
    hw[unit, :] /= factor
    model.get_layer("head").set_weights([hw, hb])
    return model


def dense_macs(model) -> dict[str, int]:
    """Multiply-accumulates per sample of each Conv2D / Dense layer, by layer name."""
    macs = {}
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        out = layer.output.shape
        positions = int(out[1] * out[2]) if len(out) == 4 else 1
        macs[layer.name] = int(weights[0].size) * positions
    return macs


def int8_compute_share(model, float_layers: list[str]) -> float:
    """Share of the model's MACs in layers none of ``float_layers`` names (matched by Keras layer name)."""
    macs = dense_macs(model)
    kept = {name for name in macs if any(f"/{name}_" in f or f"/{name}/" in f for f in float_layers)}
    return 1.0 - sum(macs[n] for n in kept) / sum(macs.values())


def outlier_onnx(factor: float = 1000.0):
    """A random-weight ONNX MLP (16 -> 64 -> 128 -> 32 -> 10) whose ``outlier`` MatMul has one unit scaled
    by ``factor`` and the ``head`` scaled back: same float function, ruined per-tensor int8 scale. The
    ``outlier`` and ``head`` layers hold under half of the weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.3, (16, 64)).astype(np.float32)
    wide = rng.normal(0, 0.15, (64, 128)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (128, 32)).astype(np.float32)
    b2 = np.abs(rng.normal(0.5, 0.1, 32)).astype(np.float32)
    w3 = rng.normal(0, 0.3, (32, 10)).astype(np.float32)
    w2[:, 0] *= factor
    b2[0] *= factor
    w3[0, :] /= factor
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (wide, "wide"), (w2, "w2"), (b2, "b2"), (w3, "w3"))]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="hidden"),
        helper.make_node("Relu", ["h"], ["hr"], name="hidden_relu"),
        helper.make_node("MatMul", ["hr", "wide"], ["m"], name="wide"),
        helper.make_node("Relu", ["m"], ["mr"], name="wide_relu"),
        helper.make_node("MatMul", ["mr", "w2"], ["o"], name="outlier"),
        helper.make_node("Add", ["o", "b2"], ["ob"], name="outlier_bias"),
        helper.make_node("Relu", ["ob"], ["or"], name="outlier_relu"),
        helper.make_node("MatMul", ["or", "w3"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "outlier_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _onnx_model(nodes, inits: dict[str, np.ndarray], name: str, width: int, out: str, out_width: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, out_width])],
        [numpy_helper.from_array(a.astype(np.float32), n) for n, a in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def sigmoid_head_onnx():
    """A detection-style head: 64 sigmoid scores, nearly all close to 0, one that fires on some inputs;
    the int8 output grid (1/255 over [0, 1]) rounds the small scores away."""
    from onnx import helper

    rng = np.random.default_rng(2)
    w1 = rng.normal(0, 0.3, (16, 32))
    w2 = rng.normal(0, 0.15, (32, 64))
    w2[:, 0] = np.abs(w2[:, 0]) * 4  # the score that fires
    b2 = np.full(64, -6.0)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="trunk"),
        helper.make_node("Relu", ["h"], ["hr"], name="trunk_relu"),
        helper.make_node("MatMul", ["hr", "w2"], ["s"], name="scores"),
        helper.make_node("Add", ["s", "b2"], ["sb"], name="scores_bias"),
        helper.make_node("Sigmoid", ["sb"], ["boxes"], name="head_sigmoid"),
    ]
    return _onnx_model(nodes, {"w1": w1, "w2": w2, "b2": b2}, "sigmoid_head", 16, "boxes", 64)


def residual_onnx():
    """A residual add of a small branch (the signal, |x| < 1) and a large one (an offset near 50): the
    add's int8 scale is set by the large branch and crushes the small one the head depends on."""
    from onnx import helper

    rng = np.random.default_rng(3)
    w_small = rng.normal(0, 0.1, (16, 32))
    w_large = rng.normal(0, 0.02, (16, 32))
    offset = np.full(32, 50.0)
    w_head = rng.normal(0, 1.0, (32, 10))
    b_head = -50.0 * w_head.sum(axis=0)  # removes the offset again
    nodes = [
        helper.make_node("MatMul", ["x", "w_small"], ["small"], name="branch_small"),
        helper.make_node("MatMul", ["x", "w_large"], ["large0"], name="branch_large"),
        helper.make_node("Add", ["large0", "offset"], ["large"], name="branch_offset"),
        helper.make_node("Add", ["small", "large"], ["merged"], name="residual_add"),
        helper.make_node("MatMul", ["merged", "w_head"], ["h"], name="head"),
        helper.make_node("Add", ["h", "b_head"], ["logits"], name="head_bias"),
    ]
    inits = {"w_small": w_small, "w_large": w_large, "offset": offset, "w_head": w_head, "b_head": b_head}
    return _onnx_model(nodes, inits, "residual", 16, "logits", 10)


def spread_onnx(blocks: int = 4, width: int = 48):
    """An MLP of ``blocks`` MatMul + affine (Mul, Add) + decomposed HardSwish (Add, Clip, Mul, Div) blocks, as in
    PP-OCR's detector: every op's output is re-rounded to int8 and each adds a little error, none most of it."""
    from onnx import helper

    rng = np.random.default_rng(3)
    inits: dict[str, np.ndarray] = {"three": np.array(3.0), "six": np.array(6.0), "zero": np.array(0.0)}
    nodes, previous, fan_in = [], "x", 16
    for i in range(blocks):
        inits |= {f"w{i}": rng.normal(0, 1 / np.sqrt(fan_in), (fan_in, width)), f"g{i}": rng.uniform(0.5, 1.5, width),
                  f"b{i}": rng.normal(0, 0.2, width)}
        nodes += [
            helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"], name=f"matmul{i}"),
            helper.make_node("Mul", [f"m{i}", f"g{i}"], [f"s{i}"], name=f"scale{i}"),
            helper.make_node("Add", [f"s{i}", f"b{i}"], [f"a{i}"], name=f"shift{i}"),
            helper.make_node("Add", [f"a{i}", "three"], [f"p{i}"], name=f"hs_add{i}"),
            helper.make_node("Clip", [f"p{i}", "zero", "six"], [f"k{i}"], name=f"hs_clip{i}"),
            helper.make_node("Mul", [f"a{i}", f"k{i}"], [f"q{i}"], name=f"hs_mul{i}"),
            helper.make_node("Div", [f"q{i}", "six"], [f"h{i}"], name=f"hs_div{i}"),
        ]
        previous, fan_in = f"h{i}", width
    inits["wh"] = rng.normal(0, 1 / np.sqrt(width), (width, 10))
    nodes.append(helper.make_node("MatMul", [previous, "wh"], ["logits"], name="head"))
    return _onnx_model(nodes, inits, "spread", 16, "logits", 10)
