"""Ops NNCF int8 leaves in float by default on OpenVINO models: chains of squared values, recurrent layers.

A square doubles the dynamic range of its input in bits: where ``x`` spans 1e-3..1, ``x**2`` spans 1e-6..1,
and an 8-bit quantizer on it (or on their sum, before a square root) rounds every small term to zero. This
is the magnitude of an STFT (``sqrt(re**2 + im**2)``, silero-vad's front end) and the variance of a
decomposed normalization. Each ``Power`` op and the non-weighted ops after it, up to the next weighted op,
the model's outputs or a square root (included), get no quantizer; the weighted op after the chain still
reads int8 activations. A ``Power`` whose exponent is not a constant above 1 starts no chain.

Recurrent layers (``LSTMSequence``, ``GRUSequence``, ``RNNSequence``) keep float weights and inputs, for one of
two measured reasons, said apart in the notes. A layer whose initial state is computed from a model input's
values carries a state from step to step, where any error compounds: NNCF 3.4's int8 of silero-vad's LSTM gave
a state cosine of 0.08 on a model read back from IR (0.998 with the LSTM in float, everything else equal). A
layer starting from zeros (a constant, or sized from an input's shape as ``torch.export`` writes an LSTM's
default state) compounds its own rounding over the sequence: NNCF int8 of resemblyzer's three LSTM layers
(160 steps) gave an embedding cosine of 0.56 (0.9986 with them in float).
"""
from __future__ import annotations

from typing import Any

_WEIGHTED = {"Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData", "GroupConvolutionBackpropData",
             "LSTMSequence", "GRUSequence", "RNNSequence", "LSTMCell", "GRUCell"}
_SQUARING = {"Power"}
_ROOT = {"Sqrt"}
_RECURRENT = {"LSTMSequence", "GRUSequence", "RNNSequence"}
_MAX_CHAIN = 16  # ops followed from one square: a magnitude or a variance is a handful


def default_float(ov_model: Any) -> list[tuple[str, list[str]]]:
    """(reason, op names) for each kind of op kept in float by default; kinds the model lacks are left out."""
    recurrent = [op for op in ov_model.get_ordered_ops() if op.get_type_name() in _RECURRENT]
    carried = [op.get_friendly_name() for op in recurrent if _state_from_input(op)]
    zero_start = [op.get_friendly_name() for op in recurrent if op.get_friendly_name() not in carried]
    found = [("squared values (int8 cannot hold their range)", squared_value_chains(ov_model)),
             ("recurrent layers with a carried state input (NNCF int8 of their weights and state breaks them)", carried),
             ("recurrent layers starting from a zero state (NNCF int8 compounds its rounding over the sequence)", zero_start)]
    return [(reason, names) for reason, names in found if names]


def _state_from_input(recurrent: Any) -> bool:
    """True when the layer's initial hidden state (input 1) is computed from a model input's values (a state
    sized from an input's shape, through ``ShapeOf``, is a zero start, not a carried state)."""
    queue, seen = [recurrent.input_value(1).get_node()], 0
    while queue and seen < 64:
        op, seen = queue.pop(), seen + 1
        if op.get_type_name() == "Parameter":
            return True
        if op.get_type_name() != "ShapeOf":
            queue.extend(value.get_node() for value in op.input_values())
    return False


def squared_value_chains(ov_model: Any) -> list[str]:
    """Friendly names of the ops on chains of squared values in ``ov_model`` (empty when it has none)."""
    names: list[str] = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() in _SQUARING and _raises(op):
            names.extend(_chain(op))
    return list(dict.fromkeys(names))


def _raises(power: Any) -> bool:
    """True for a ``Power`` whose exponent is a constant above 1 (a square, a cube): it widens the range."""
    exponent = power.input_value(1).get_node()
    if exponent.get_type_name() != "Constant":
        return False
    return bool((exponent.get_data() > 1).all())


def _chain(square: Any) -> list[str]:
    """The square itself and what follows it, breadth first, stopping at weighted ops, roots and outputs."""
    found, queue, seen = [], [square], set()
    while queue and len(found) < _MAX_CHAIN:
        op = queue.pop(0)
        name = op.get_friendly_name()
        if name in seen:
            continue
        seen.add(name)
        found.append(name)
        if op.get_type_name() in _ROOT:
            continue
        for output in op.outputs():
            for target in output.get_target_inputs():
                consumer = target.get_node()
                if consumer.get_type_name() not in _WEIGHTED | {"Result"}:
                    queue.append(consumer)
    return found
