"""LiteRT (TFLite) runners: ai-edge-litert, and tflite_runtime (declared as the fallback for devices)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.formats.runner import Runner, dequantize
from edgekit.specs import TensorSpec


def interpreter_class(runtime: str = "litert"):
    """The ``Interpreter`` class of ai-edge-litert (``runtime="litert"``) or of tflite_runtime."""
    if runtime == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter
    else:
        from ai_edge_litert.interpreter import Interpreter
    return Interpreter


def tensor_spec(detail: dict) -> TensorSpec:
    """A ``TensorSpec`` from an interpreter's tensor detail, with its scale and zero point when quantized."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    signature = detail.get("shape_signature", detail["shape"])
    shape = tuple(None if int(d) < 0 else int(d) for d in signature)
    return TensorSpec(
        name=detail["name"], shape=shape, dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale) if scale else None, zero_point=int(zero_point) if scale else None,
    )


class LiteRtRunner(Runner):
    """Runs a .tflite through its default signature, so inputs and outputs keep their signature names."""

    def __init__(self, path: Path, threads: int | None, runtime: str = "litert") -> None:
        self.runtime = runtime
        try:
            self.interpreter = interpreter_class(runtime)(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ConversionError(
                f"LiteRT cannot load {path.name}: {first_line(exc)}", "the .tflite file is corrupt"
            ) from exc
        signatures = self.interpreter.get_signature_list()
        self.signature = next(iter(signatures), None)
        if self.signature is None:
            self.interpreter.allocate_tensors()
            in_details = self.interpreter.get_input_details()
            out_details = self.interpreter.get_output_details()
            self._in_names = [d["name"] for d in in_details]
            self._out_names = [d["name"] for d in out_details]
        else:
            runner = self.interpreter.get_signature_runner(self.signature)
            in_map, out_map = runner.get_input_details(), runner.get_output_details()
            in_details = [dict(d, name=k) for k, d in in_map.items()]
            out_details = [dict(d, name=k) for k, d in out_map.items()]
            self._runner = runner
        self.inputs = tuple(tensor_spec(d) for d in in_details)
        self.outputs = tuple(tensor_spec(d) for d in out_details)

    def _prepare(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.cast_feed(feed)

    def _finish(self, name: str, value: np.ndarray) -> np.ndarray:
        spec = next(s for s in self.outputs if s.name == name)
        if spec.scale is not None and np.issubdtype(value.dtype, np.integer):
            return dequantize(value, spec)
        return value

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference; variable tensors (the hidden state of fused LSTM ops) are reset afterwards,
        so every call is independent as in the source model (state inputs are carried explicitly)."""
        prepared = self._prepare(feed)
        if self.signature is not None:
            if self._runner is None:  # released by prepare() for the lean timing path
                self._runner = self.interpreter.get_signature_runner(self.signature)
            result = self._runner(**prepared)
            outputs = {name: self._finish(name, np.array(v)) for name, v in result.items()}
        else:
            for index, name in enumerate(self._in_names):
                detail = self.interpreter.get_input_details()[index]
                self.interpreter.set_tensor(detail["index"], prepared[name])
            self.interpreter.invoke()
            outputs = {
                d["name"]: self._finish(d["name"], self.interpreter.get_tensor(d["index"]).copy())
                for d in self.interpreter.get_output_details()
            }
        self.interpreter.reset_all_variables()
        return outputs

    accelerator = "xnnpack"

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        """Set the inputs once (one full run sizes and allocates the tensors); timed runs only invoke.

        A live SignatureRunner holds a reference that makes ``Interpreter.invoke`` refuse to run, so it is
        released here (``run`` makes a new one). Signatures on another subgraph than 0 keep the full call.
        """
        prepared = self._prepare(feed)
        self.run(feed)
        if self.signature is not None:
            if self._runner._subgraph_index != 0:
                return prepared
            details = self._runner.get_input_details()
            self._runner = None
            for name, value in prepared.items():
                self.interpreter.set_tensor(details[name]["index"], value)
        return None

    def run_prepared(self, prepared: Any) -> None:
        if prepared is None:
            self.interpreter.invoke()
        else:
            self.run(prepared)


def _check_device(device: str | None) -> None:
    if device not in (None, "CPU", "cpu", "xnnpack"):
        raise EdgekitError(
            f"the TFLite delegate {device} is not available in this edgekit runner",
            "TFLite artifacts run on the CPU (XNNPACK) here",
        )


def load(path: Path, *, device: str | None = None, threads: int | None = None, profile_ops: bool = False) -> LiteRtRunner:
    """Per-op profiling is not exposed by the ai-edge-litert 2.3 Interpreter API: ``op_profile`` gives None."""
    _check_device(device)
    return LiteRtRunner(path, threads)


def load_tflite_runtime(path: Path, *, device: str | None = None, threads: int | None = None,
                        profile_ops: bool = False) -> LiteRtRunner:
    """The same runner on tflite_runtime's Interpreter (devices where ai-edge-litert is not installed)."""
    _check_device(device)
    return LiteRtRunner(path, threads, runtime="tflite-runtime")


def probe() -> list[str]:
    """Delegates usable here: XNNPACK, built into the interpreter."""
    return ["xnnpack"]
