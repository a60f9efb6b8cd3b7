"""Modules of QAT models: fixed fake quantization and a root for nn.Sequential (import torch: load from the torch backend only)."""
from __future__ import annotations

from typing import Any

import torch


class FixedFakeQuantize(torch.nn.Module):
    """Fake quantization with a trained, fixed range: exports as QuantizeLinear/DequantizeLinear (ONNX) and as
    FakeQuantize (OpenVINO). Built from a torch.ao ``FakeQuantize`` (what ``nncf.strip`` makes of NNCF's quantizers).

    A per-tensor range is kept as Python numbers, so torch.export records it as constants rather than tensors.
    """

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.quant_min, self.quant_max = int(source.quant_min), int(source.quant_max)
        self.per_channel = source.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine)
        self.axis = int(source.ch_axis)
        scale, zero_point = source.scale.detach().float(), source.zero_point.detach().to(torch.int32)
        if self.per_channel:
            self.register_buffer("scale", scale.clone())
            self.register_buffer("zero_point", zero_point.clone())
        else:
            self.scale, self.zero_point = float(scale), int(zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            return torch.fake_quantize_per_channel_affine(
                x, self.scale, self.zero_point, self.axis, self.quant_min, self.quant_max)
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min, self.quant_max)

    def extra_repr(self) -> str:
        kind = f"per-channel axis {self.axis}" if self.per_channel else f"scale {self.scale:.6g}, zero point {self.zero_point}"
        return f"{kind}, range [{self.quant_min}, {self.quant_max}]"


class SequentialRoot(torch.nn.Module):
    """An ``nn.Sequential`` as the child ``body`` of a plain module, so NNCF can keep its hooks at the root."""

    def __init__(self, body: torch.nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # named as nn.Sequential names it: the model's input name
        return self.body(input)
