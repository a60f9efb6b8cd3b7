"""NNCF int8 on OpenVINO keeps squared-value chains and recurrent layers in float by default (converters/_openvino_float)."""
from __future__ import annotations

import numpy as np
import pytest
from edgekit.converters._openvino_float import default_float, squared_value_chains


def _magnitude_model(exponent: float = 2.0):
    """A conv STFT-like front end: conv -> re, im -> re**p + im**p -> sqrt -> conv -> LSTM-free head."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 1, 64], np.float32, name="x")
    basis = ops.constant(np.random.default_rng(0).normal(size=(8, 1, 16)).astype(np.float32))
    spectrum = ops.convolution(x, basis, [8], [0], [0], [1], name="stft")
    re = ops.slice(spectrum, [0], [4], [1], [1], name="re")
    im = ops.slice(spectrum, [4], [8], [1], [1], name="im")
    power = ops.constant(np.float32(exponent))
    total = ops.add(ops.power(re, power, name="re2"), ops.power(im, power, name="im2"), name="sum")
    magnitude = ops.sqrt(total, name="mag")
    head = ops.convolution(magnitude, ops.constant(np.ones((2, 4, 1), np.float32)), [1], [0], [0], [1], name="head")
    return ov.Model([ops.result(head)], [x], "magnitude")


def test_the_square_sum_root_chain_stays_float_and_stops_at_the_root() -> None:
    assert squared_value_chains(_magnitude_model()) == ["re2", "sum", "mag", "im2"]
    assert default_float(_magnitude_model()) == [
        ("squared values (int8 cannot hold their range)", ["re2", "sum", "mag", "im2"])]


def test_a_power_below_one_starts_no_chain() -> None:
    assert squared_value_chains(_magnitude_model(exponent=0.5)) == []
    assert default_float(_magnitude_model(exponent=0.5)) == []


def test_recurrent_layers_are_listed_by_where_their_state_comes_from() -> None:
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 5, 3], np.float32, name="x")
    h = ops.parameter([1, 1, 4], np.float32, name="h")
    c = ops.parameter([1, 1, 4], np.float32, name="c")
    rng = np.random.default_rng(1)
    lstm = ops.lstm_sequence(x, h, c, ops.constant(np.array([5], np.int32)),
                             ops.constant(rng.normal(size=(1, 16, 3)).astype(np.float32)),
                             ops.constant(rng.normal(size=(1, 16, 4)).astype(np.float32)),
                             ops.constant(np.zeros((1, 16), np.float32)), 4, "forward", name="lstm")
    model = ov.Model([ops.result(lstm.output(0))], [x, h, c], "rnn")
    reason = "recurrent layers with a carried state input (NNCF int8 of their weights and state breaks them)"
    assert default_float(model) == [(reason, ["lstm"])]
    zeros = ops.constant(np.zeros((1, 1, 4), np.float32))
    encoder = ops.lstm_sequence(x, zeros, zeros, ops.constant(np.array([5], np.int32)),
                                ops.constant(rng.normal(size=(1, 16, 3)).astype(np.float32)),
                                ops.constant(rng.normal(size=(1, 16, 4)).astype(np.float32)),
                                ops.constant(np.zeros((1, 16), np.float32)), 4, "forward", name="encoder")
    zero_start = "recurrent layers starting from a zero state (NNCF int8 compounds its rounding over the sequence)"
    assert default_float(ov.Model([ops.result(encoder.output(0))], [x], "encoder")) == [(zero_start, ["encoder"])]
    batch = ops.gather(ops.shape_of(x), ops.constant(np.array([0], np.int64)), ops.constant(np.array(0, np.int64)))
    sized = ops.broadcast(ops.constant(np.float32(0.0)), ops.concat([ops.constant(np.array([1], np.int64)), batch,
                                                                    ops.constant(np.array([4], np.int64))], 0))
    sized = ops.transpose(sized, ops.constant(np.array([1, 0, 2], np.int64)))  # zeros of [batch, 1, 4], as torch.export writes
    exported = ops.lstm_sequence(x, sized, sized, ops.constant(np.array([5], np.int32)),
                                 ops.constant(rng.normal(size=(1, 16, 3)).astype(np.float32)),
                                 ops.constant(rng.normal(size=(1, 16, 4)).astype(np.float32)),
                                 ops.constant(np.zeros((1, 16), np.float32)), 4, "forward", name="exported")
    assert default_float(ov.Model([ops.result(exported.output(0))], [x], "exported")) == [(zero_start, ["exported"])]


@pytest.mark.slow  # NNCF int8 of a small model
def test_int8_of_the_magnitude_model_has_no_quantizer_on_squares() -> None:

    import nncf

    model = _magnitude_model()
    names = squared_value_chains(model)
    data = [np.random.default_rng(i).normal(scale=10.0 ** -(i % 3), size=(1, 1, 64)).astype(np.float32) for i in range(16)]
    quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=16, ignored_scope=nncf.IgnoredScope(names=names))
    fq_consumers = {t.get_node().get_friendly_name() for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize"
                    for t in op.output(0).get_target_inputs()}
    assert not fq_consumers & set(names), fq_consumers
    assert "head" in {n.split("/")[0] for n in fq_consumers}  # the conv after the root still reads int8
