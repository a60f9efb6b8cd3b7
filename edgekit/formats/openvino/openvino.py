"""OpenVINO runner; CPU inference precision is pinned to f32 unless another is asked for."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.formats.runner import Runner
from edgekit.specs import TensorSpec


def _spec(port) -> TensorSpec:
    partial = port.get_partial_shape()
    shape = tuple(d.get_length() if d.is_static else None for d in partial) if partial.rank.is_static else ()
    names = port.get_names()
    name = port.get_any_name() if names else f"port_{port.get_index()}"
    return TensorSpec(name=name, shape=shape, dtype=np.dtype(port.get_element_type().to_dtype()).name)


class OpenVinoRunner(Runner):
    runtime = "openvino"

    def __init__(self, path: Path, device: str, threads: int | None, precision_hint: str, profile_ops: bool = False) -> None:
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
            if device == "CPU":
                config["NUM_STREAMS"] = 1
        self._profile_ops = profile_ops
        if profile_ops:
            config["PERF_COUNT"] = True
        try:
            self.compiled = core.compile_model(str(path), device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line messages
            raise ConversionError(
                f"OpenVINO cannot load {path.name}: {first_line(exc)}",
                "the IR is corrupt, its .bin is missing, or it uses an operation this OpenVINO does not have",
            ) from exc
        self.request = self.compiled.create_infer_request()
        self.accelerator = device
        self.inputs = tuple(_spec(p) for p in self.compiled.inputs)
        self.outputs = tuple(_spec(p) for p in self.compiled.outputs)
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.executed_precision = hint.to_string() if hasattr(hint, "to_string") else str(hint).lower()

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.request.infer(self.cast_feed(feed))
        return {spec.name: np.asarray(result[port]) for spec, port in zip(self.outputs, self.compiled.outputs)}

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        """Set the input tensors on the request once; timed runs call ``infer()`` without copying."""
        import openvino as ov

        feed = self.cast_feed(feed)
        self.run(feed)
        for port in self.compiled.inputs:
            name = port.get_any_name() if port.get_names() else None
            if name in feed:
                self.request.set_tensor(port, ov.Tensor(np.ascontiguousarray(feed[name])))
        return feed

    def run_prepared(self, prepared: Any) -> None:
        self.request.infer()  # the synchronous call, as benchmark_app's sync loop (start_async + wait adds a thread hand-off)

    def op_profile(self, prepared: Any, runs: int) -> list[dict[str, Any]] | None:
        """Executed layers' times from ``PERF_COUNT`` and ``get_profiling_info()``, averaged over ``runs``."""
        if not self._profile_ops:  # only runners opened with profile_ops=True count (PERF_COUNT)
            return None
        totals: dict[str, float] = defaultdict(float)
        types: dict[str, str] = {}
        for _ in range(runs):
            self.request.infer()
            for info in self.request.get_profiling_info():
                if str(info.status).endswith("EXECUTED"):  # not NOT_RUN / OPTIMIZED_OUT
                    totals[info.node_name] += info.real_time.total_seconds() * 1000.0
                    types[info.node_name] = f"{info.node_type} ({info.exec_type})"
        return [{"name": n, "type": types[n], "ms": t / runs} for n, t in totals.items()]


def load(path: Path, *, device: str | None = None, threads: int | None = None, precision_hint: str = "f32",
         profile_ops: bool = False) -> OpenVinoRunner:
    return OpenVinoRunner(path, device or "CPU", threads, precision_hint, profile_ops)


def probe() -> list[str]:
    """The devices OpenVINO finds here (CPU, GPU, NPU, ...)."""
    import openvino as ov

    return list(ov.Core().available_devices)
