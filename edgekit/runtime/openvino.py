"""OpenVINO runner; CPU inference precision is pinned to f32 unless another is asked for."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ConversionError, EdgekitError
from edgekit.runtime.base import Runner
from edgekit.specs import TensorSpec


def _spec(port) -> TensorSpec:
    partial = port.get_partial_shape()
    shape = tuple(d.get_length() if d.is_static else None for d in partial) if partial.rank.is_static else ()
    names = port.get_names()
    name = port.get_any_name() if names else f"port_{port.get_index()}"
    return TensorSpec(name=name, shape=shape, dtype=np.dtype(port.get_element_type().to_dtype()).name)


class OpenVinoRunner(Runner):
    runtime = "openvino"

    def __init__(self, path: Path, device: str, threads: int | None, precision_hint: str) -> None:
        import openvino as ov

        core = ov.Core()
        if device not in core.available_devices:
            raise EdgekitError(
                f"OpenVINO device {device} is not available on this machine",
                f"available here: {', '.join(core.available_devices)}",
            )
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision_hint}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = core.compile_model(str(path), device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line messages
            raise ConversionError(
                f"OpenVINO cannot load {path.name}: {str(exc).strip().splitlines()[0]}",
                "the IR is corrupt, its .bin is missing, or it uses an operation this OpenVINO does not have",
            ) from exc
        self.request = self.compiled.create_infer_request()
        self.inputs = tuple(_spec(p) for p in self.compiled.inputs)
        self.outputs = tuple(_spec(p) for p in self.compiled.outputs)
        self.executed_precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT")).lower()

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.request.infer(feed)
        return {spec.name: np.asarray(result[port]) for spec, port in zip(self.outputs, self.compiled.outputs)}


def load(path: Path, *, device: str | None = None, threads: int | None = None, precision_hint: str = "f32") -> OpenVinoRunner:
    return OpenVinoRunner(path, device or "CPU", threads, precision_hint)
