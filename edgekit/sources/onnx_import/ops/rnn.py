"""LSTM and GRU in the ONNX layouts (gate order i,o,f,c and z,r,h), unrolled over the static sequence.

Each direction is one function of the whole sequence (one FX node); ``torch.export`` unrolls its loop at
the static sequence length into matrix products and element-wise ops that litert-torch lowers.
"""
from __future__ import annotations

from typing import Any

from edgekit.sources.onnx_import._torch import torch
from edgekit.sources.onnx_import.fold import ints
from edgekit.sources.onnx_import.ops._util import shape
from edgekit.sources.onnx_import.registry import op, refuse

_RNN_ATTRS = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout")
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def _check_rnn(op_type: str) -> Any:
    def check(attrs: dict[str, Any], opset: int) -> str | None:
        default = _DEFAULT_ACTIVATIONS[op_type]
        activations = list(attrs.get("activations", default))
        if activations not in (default, default * 2):
            return f"activations {activations} are not supported (only the default {default})"
        if attrs.get("layout", 0) != 0:
            return "layout=1 (batch first) is not supported"
        if attrs.get("input_forget", 0):
            return "input_forget=1 is not supported"
        if attrs.get("direction", "forward") not in ("forward", "reverse", "bidirectional"):
            return f"direction {attrs['direction']!r} is not an ONNX value"
        return None

    return check


def _gates(value: Any, clip: float | None) -> Any:
    return torch.clamp(value, -clip, clip) if clip else value


def _lstm_direction(x: Any, w: Any, r: Any, bias: Any, h: Any, c: Any, peep: Any, clip: float | None,
                    reverse: bool) -> tuple[Any, Any, Any]:
    projected = torch.matmul(x, w.t()) + bias  # [seq, batch, 4 * hidden]
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    outputs = [None] * x.shape[0]
    for t in steps:
        gates = _gates(projected[t] + torch.matmul(h, r.t()), clip)
        i, o, f, g = torch.chunk(gates, 4, dim=-1)
        if peep is not None:
            pi, po, pf = torch.chunk(peep, 3)
            i, f = i + pi * c, f + pf * c
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        c = f * c + i * g
        o = o + po * c if peep is not None else o
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs[t] = h
    return torch.stack(outputs), h, c


def _gru_direction(x: Any, w: Any, r: Any, wb: Any, rb: Any, h: Any, clip: float | None, reverse: bool,
                   linear_before_reset: bool) -> tuple[Any, Any]:
    projected = torch.matmul(x, w.t()) + wb  # [seq, batch, 3 * hidden]
    rz, rr, rh = torch.chunk(r, 3)
    bz, br, bh = torch.chunk(rb, 3)
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    outputs = [None] * x.shape[0]
    for t in steps:
        xz, xr, xh = torch.chunk(projected[t], 3, dim=-1)
        z = torch.sigmoid(_gates(xz + torch.matmul(h, rz.t()) + bz, clip))
        reset = torch.sigmoid(_gates(xr + torch.matmul(h, rr.t()) + br, clip))
        if linear_before_reset:
            candidate = xh + reset * (torch.matmul(h, rh.t()) + bh)
        else:
            candidate = xh + torch.matmul(reset * h, rh.t()) + bh
        candidate = torch.tanh(_gates(candidate, clip))
        h = (1 - z) * candidate + z * h
        outputs[t] = h
    return torch.stack(outputs), h


def _stack_directions(parts: list[Any], dim: int) -> Any:
    return torch.stack(parts, dim)


def _sequence_check(node: Any, x: Any, lengths: Any) -> None:
    if lengths is None:
        return
    values = ints(node, lengths, f"{node.op_type}'s sequence_lens")
    if any(v != shape(x)[0] for v in values):
        raise refuse(node, "sequence_lens shorter than the sequence are not supported")


def _directions(node: Any) -> list[bool]:
    direction = node.attrs.get("direction", "forward")
    return [False, True] if direction == "bidirectional" else [direction == "reverse"]


def _initial(value: Any, d: int, batch: int, hidden: int, like: Any) -> Any:
    if value is not None:
        return value[d]
    return torch.zeros((batch, hidden), dtype=like.dtype)


@op("LSTM", since=7, attrs=(*_RNN_ATTRS, "input_forget"), check=_check_rnn("LSTM"))
def lstm(b: Any, node: Any, x: Any, w: Any, r: Any, bias: Any = None, lengths: Any = None, h0: Any = None,
         c0: Any = None, peep: Any = None) -> tuple[Any, Any, Any]:
    _sequence_check(node, x, lengths)
    hidden, batch = shape(r)[-1], shape(x)[1]
    clip = node.attrs.get("clip")
    ys, hs, cs = [], [], []
    for d, reverse in enumerate(_directions(node)):
        total_bias = b.call(_bias_pair, bias, d, 4 * hidden, True) if bias is not None else torch.zeros(4 * hidden)
        h = b.call(_select, h0, d) if h0 is not None else _initial(None, d, batch, hidden, w)
        c = b.call(_select, c0, d) if c0 is not None else _initial(None, d, batch, hidden, w)
        p = b.call(_select, peep, d) if peep is not None else None
        wd, rd = b.call(_select, w, d), b.call(_select, r, d)
        y, h_last, c_last = b.call(_lstm_direction, x, wd, rd, total_bias, h, c, p, clip, reverse)
        ys.append(y)
        hs.append(h_last)
        cs.append(c_last)
    return b.call(_stack_directions, ys, 1), b.call(_stack_directions, hs, 0), b.call(_stack_directions, cs, 0)


@op("GRU", since=7, attrs=(*_RNN_ATTRS, "linear_before_reset"), check=_check_rnn("GRU"))
def gru(b: Any, node: Any, x: Any, w: Any, r: Any, bias: Any = None, lengths: Any = None,
        h0: Any = None) -> tuple[Any, Any]:
    _sequence_check(node, x, lengths)
    hidden, batch = shape(r)[-1], shape(x)[1]
    clip = node.attrs.get("clip")
    linear_before_reset = bool(node.attrs.get("linear_before_reset", 0))
    ys, hs = [], []
    for d, reverse in enumerate(_directions(node)):
        wb = b.call(_bias_pair, bias, d, 3 * hidden, False) if bias is not None else torch.zeros(3 * hidden)
        rb = b.call(_bias_pair, bias, d, -3 * hidden, False) if bias is not None else torch.zeros(3 * hidden)
        h = b.call(_select, h0, d) if h0 is not None else _initial(None, d, batch, hidden, w)
        wd, rd = b.call(_select, w, d), b.call(_select, r, d)
        y, h_last = b.call(_gru_direction, x, wd, rd, wb, rb, h, clip, reverse, linear_before_reset)
        ys.append(y)
        hs.append(h_last)
    return b.call(_stack_directions, ys, 1), b.call(_stack_directions, hs, 0)


def _select(value: Any, index: int) -> Any:
    return value[index]


def _bias_pair(bias: Any, d: int, width: int, summed: bool) -> Any:
    """Direction ``d`` of an ONNX RNN bias [Wb, Rb]: their sum, or Wb (width > 0) / Rb (width < 0)."""
    row = bias[d]
    if summed:
        return row[:width] + row[width:]
    return row[:width] if width > 0 else row[width:]
