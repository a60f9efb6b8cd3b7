"""SavedModel functions with captured tensors through tf2onnx: every capture frozen, no dangling graph input."""
from __future__ import annotations


import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tf2onnx = pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")

from edgekit.converters._tf_freeze import convert_frozen, extra_inputs  # noqa: E402

SIGNATURE = [tf.TensorSpec([None, 16], tf.float32, name="features")]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tf.Module with two variables, a captured constant basis and two signatures, saved and loaded back."""
    rng = np.random.default_rng(0)
    basis = tf.constant(rng.standard_normal((16, 8)).astype(np.float32))

    class Scorer(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(rng.standard_normal((8, 3)).astype(np.float32))
            self.b = tf.Variable(np.ones(3, np.float32))

        @tf.function(input_signature=SIGNATURE)
        def probs(self, features):
            return {"probs": tf.nn.softmax(tf.matmul(tf.matmul(features, basis), self.w) + self.b)}

        @tf.function(input_signature=SIGNATURE)
        def embed(self, features):
            return {"embedding": tf.matmul(features, basis) * self.b[0]}

    module = Scorer()
    folder = tmp_path_factory.mktemp("savedmodel") / "scorer"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.probs, "embed": module.embed})
    return tf.saved_model.load(str(folder))


@pytest.mark.slow  # TensorFlow and tf2onnx: about 20 s
@pytest.mark.parametrize(("signature", "output"), [("serving_default", "probs"), ("embed", "embedding")])
def test_captured_tensors_are_frozen(saved, tmp_path, signature, output):
    function = saved.signatures[signature]

    def call(features):
        return function(features=features)

    traced = tf.function(call, input_signature=SIGNATURE)
    plain = tmp_path / "plain.onnx"
    tf2onnx.convert.from_function(traced, input_signature=SIGNATURE, opset=17, output_path=str(plain))
    assert extra_inputs(plain, ["features"])  # tf2onnx alone leaves the captured basis as a graph input
    frozen = tmp_path / "frozen.onnx"
    assert convert_frozen(traced, SIGNATURE, 17, frozen) == 1
    assert extra_inputs(frozen, ["features"]) == []
    session = ort.InferenceSession(str(frozen), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"] and [o.name for o in session.get_outputs()] == [output]
    x = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    want = function(features=tf.constant(x))[output].numpy()
    (got,) = session.run(None, {"features": x})
    assert float(np.abs(got - want).max()) < 1e-5
