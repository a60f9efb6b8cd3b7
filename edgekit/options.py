"""Frozen option objects shared by the pipeline and the converters."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class QuantScheme(BaseModel):
    """How int8 quantization is done; defaults come from the device profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_channel: bool = True
    symmetric_weights: bool = True
    symmetric_activations: bool = False
    io_dtype: Literal["float32", "int8", "uint8"] = "float32"
    activations: Literal["int8", "int16"] = "int8"
    calibration_method: Literal["minmax", "percentile", "entropy"] = "minmax"
    #: NNCF (OpenVINO): "auto" = full bias correction for models up to 16 MiB of weights, fast above
    bias_correction: Literal["auto", "fast", "full"] = "auto"
    #: NNCF (OpenVINO): SmoothQuant on MatMuls (``model_type=TRANSFORMER``)
    smooth_quant: bool = False
    #: ONNX Runtime and OpenVINO int8 weights: "full" 8-bit, "reduced" 7-bit (no saturation on x86 CPUs without
    #: VNNI, see edgekit.cpu_int8), "auto": reduced when the building host's int8 products saturate (the
    #: manifest's notes say which was used)
    weight_range: Literal["auto", "full", "reduced"] = "auto"

    @model_validator(mode="after")
    def _consistent(self) -> QuantScheme:
        if self.activations == "int16" and self.io_dtype == "uint8":
            raise ValueError("int16 activations cannot be combined with uint8 input/output")
        return self

    @property
    def reduced_weights(self) -> bool:
        """Whether weights are quantized to 7 bits ("auto": on a host whose int8 products saturate, with int8
        activations; int16 activations run through other kernels, where 7 bits would only lose precision)."""
        from edgekit.cpu_int8 import host_int8_saturates

        auto = self.weight_range == "auto" and self.activations == "int8" and host_int8_saturates()
        return self.weight_range == "reduced" or auto


class Tolerances(BaseModel):
    """Minimum parity an artifact needs to pass, per precision (overridable per build)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cosine: float
    top1_agreement: float | None = None
    #: regression outputs: mean per-sample L2 error relative to the output's RMS norm
    relative_error: float = 0.1
    #: detection heads (boxes, scores): cosine over the whole head
    detection_cosine: float = 0.95
    #: embeddings: share of samples whose nearest neighbour is unchanged (None: not checked)
    retrieval_agreement: float | None = None
    #: an int8 artifact must store at least this fraction of its weights as int8 (counted in the file)
    min_int8_weight_fraction: float | None = None
    #: the int8 rescue keeps at least this share of the multiply-accumulates with int8 weights (None: 0.8)
    min_int8_compute_share: float | None = None

    @classmethod
    def default_for(cls, precision: str) -> Tolerances:
        return _DEFAULT_TOLERANCES[precision]


_DEFAULT_TOLERANCES = {
    "fp32": Tolerances(cosine=0.9999, relative_error=1e-3, detection_cosine=0.9999),
    "fp16": Tolerances(cosine=0.999, relative_error=1e-2, detection_cosine=0.999),
    "dynamic": Tolerances(cosine=0.98, top1_agreement=0.95, min_int8_weight_fraction=0.5),
    "int8": Tolerances(cosine=0.98, top1_agreement=0.95, min_int8_weight_fraction=0.5),
}
