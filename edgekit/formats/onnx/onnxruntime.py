"""ONNX Runtime runner (CPU execution provider unless another is asked for and present)."""
from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.formats.runner import Runner
from edgekit.specs import TensorSpec

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(bool)": "bool",
}


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in (arg.shape or ()))
    return TensorSpec(name=arg.name, shape=shape, dtype=_ORT_TYPES.get(arg.type, arg.type))


class OnnxRuntimeRunner(Runner):
    runtime = "onnxruntime"

    def __init__(self, path: Path, provider: str, threads: int | None, profile_ops: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._profile_dir = None
        if profile_ops:
            self._profile_dir = tempfile.mkdtemp(prefix="edgekit-ort-profile-")
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(self._profile_dir, "ort")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=[provider])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConversionError(
                f"ONNX Runtime cannot load {path.name}: {first_line(exc)}",
                "the artifact is corrupt or uses an operator this ONNX Runtime does not have",
            ) from exc
        self.provider = self.accelerator = provider
        self._output_names = [o.name for o in self.session.get_outputs()]
        self.inputs = tuple(_spec(a) for a in self.session.get_inputs())
        self.outputs = tuple(_spec(a) for a in self.session.get_outputs())

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.outputs]
        values = self.session.run(names, self.cast_feed(feed))
        return dict(zip(names, values, strict=True))

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        return self.cast_feed(feed)

    def run_prepared(self, prepared: Any) -> None:
        self.session.run(self._output_names, prepared)

    def op_profile(self, prepared: Any, runs: int) -> list[dict[str, Any]] | None:
        """Kernel times of every node from ONNX Runtime's profiler (``enable_profiling``)."""
        if self._profile_dir is None:
            return None
        for _ in range(runs):
            self.run_prepared(prepared)
        trace = Path(self.session.end_profiling())
        try:
            events = json.loads(trace.read_text(encoding="utf-8"))
        finally:
            trace.unlink(missing_ok=True)
            os.rmdir(self._profile_dir)
        totals: dict[str, float] = defaultdict(float)
        types: dict[str, str] = {}
        for event in events:
            name = event.get("name", "")
            if event.get("cat") == "Node" and name.endswith("_kernel_time"):
                node = name.removesuffix("_kernel_time")
                totals[node] += float(event.get("dur", 0)) / 1000.0
                types[node] = str(event.get("args", {}).get("op_name", ""))
        return [{"name": n, "type": types[n], "ms": t / runs} for n, t in totals.items()]


def load(path: Path, *, device: str | None = None, threads: int | None = None, profile_ops: bool = False) -> OnnxRuntimeRunner:
    import onnxruntime as ort

    provider = device or "CPUExecutionProvider"
    available = ort.get_available_providers()
    if provider not in available:
        raise EdgekitError(
            f"ONNX Runtime execution provider {provider} is not available on this machine",
            f"available here: {', '.join(available)}",
        )
    return OnnxRuntimeRunner(path, provider, threads, profile_ops)


def probe() -> list[str]:
    """The execution providers in this onnxruntime build."""
    import onnxruntime as ort

    return list(ort.get_available_providers())
