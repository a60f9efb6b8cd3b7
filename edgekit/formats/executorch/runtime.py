"""ExecuTorch runtime runner: ``Runtime.get().load_program(path)``, method ``forward``.

Input/output names come from the ``edgekit_io`` constant method the route writes into the program (a .pte
edgekit did not write gets ``input_0``..., ``output_0``...); shapes and dtypes come from the method metadata.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.formats.executorch.program import IO_METHOD, SCALAR_TYPES
from edgekit.formats.runner import Runner
from edgekit.specs import TensorSpec


def _specs(infos: list[Any], names: list[str], prefix: str) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(name=names[i] if i < len(names) else f"{prefix}_{i}", shape=tuple(info.sizes()),
                            dtype=SCALAR_TYPES.get(int(info.dtype()), "float32")) for i, info in enumerate(infos))


class ExecuTorchRunner(Runner):
    runtime = "executorch"
    accelerator = "XnnpackBackend"

    def __init__(self, path: Path) -> None:
        import json

        from edgekit.quiet import quiet

        with quiet():
            from executorch.runtime import Runtime

            try:
                program = Runtime.get().load_program(Path(path).read_bytes())
                self._method = program.load_method("forward")
                names = json.loads(program.load_method(IO_METHOD).execute([])[0]) if IO_METHOD in program.method_names else {}
            except Exception as exc:  # the runtime raises RuntimeError with its own status text
                raise ConversionError(
                    f"the ExecuTorch runtime cannot load {Path(path).name}: {first_line(exc)}",
                    "the .pte is corrupt, truncated, or needs a backend or kernel this runtime was not built with",
                ) from exc
        self._program = program  # keeps the loaded program alive while the method runs
        meta = self._method.metadata
        self.inputs = _specs([meta.input_tensor_meta(i) for i in range(meta.num_inputs())], names.get("inputs", []), "input")
        self.outputs = _specs([meta.output_tensor_meta(i) for i in range(meta.num_outputs())],
                              names.get("outputs", []), "output")

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        import torch

        cast = self.cast_feed(feed)
        return [torch.from_numpy(cast[spec.name]) for spec in self.inputs]

    def run_prepared(self, prepared: Any) -> None:
        self._execute(prepared)

    def _execute(self, prepared: Any) -> list[Any]:
        try:
            return list(self._method.execute(prepared))
        except Exception as exc:  # RuntimeError carrying the runtime's error code
            raise EdgekitError(f"the ExecuTorch runtime failed to run forward: {first_line(exc)}",
                               "check the input shapes against the artifact's (they are fixed at export)") from exc

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._execute(self.prepare(feed))
        return {spec.name: np.array(value.numpy() if hasattr(value, "numpy") else value)
                for spec, value in zip(self.outputs, values, strict=True)}


def load(path: Path, *, device: str | None = None, threads: int | None = None,
         profile_ops: bool = False) -> ExecuTorchRunner:
    """Load ``path``; ``device`` may only name XnnpackBackend (what this runtime build runs on CPU).
    ``threads`` is not applied: the ExecuTorch Python runtime exposes no thread setting (XNNPACK's threadpool
    sizes itself); ``profile_ops`` gives no per-op times (``op_profile`` returns None)."""
    if device not in (None, "XnnpackBackend", "CPU", "cpu"):
        raise EdgekitError(f"the ExecuTorch runtime here cannot target {device}",
                           "this host runs XnnpackBackend (CPU); Core ML / MPS / Vulkan / QNN need device builds")
    return ExecuTorchRunner(path)


def probe() -> list[str]:
    """XnnpackBackend when the runtime's native extension is installed (the executorch wheels link XNNPACK
    into it). Found on disk, not imported: loading the runtime imports torch, which device listing and the
    agent must not. The other backends need device builds this host has none of."""
    import importlib.util

    spec = importlib.util.find_spec("executorch")
    folders = [Path(f) / "extension" / "pybindings" for f in (spec.submodule_search_locations or ())] if spec else []
    return ["XnnpackBackend"] if any(any(f.glob("_portable_lib*")) for f in folders if f.is_dir()) else []
