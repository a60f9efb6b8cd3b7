"""ExecuTorch runtime runner: ``Runtime.get().load_program(path)``, method ``forward``.

Input/output names come from the ``edgekit_io`` constant method the route writes into the program (a .pte
edgekit did not write gets ``input_0``..., ``output_0``...); shapes and dtypes come from the method metadata.
``threads`` sizes ExecuTorch's process-wide threadpool (XNNPACK's workers); per-op times come from the
program's ETDump where the runtime was built with its event tracer, else a None that says so.
"""
from __future__ import annotations

import weakref
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


_LIVE: weakref.WeakSet = weakref.WeakSet()  # runners whose XNNPACK delegates hold the process's threadpool
ETDUMP_BUFFER_BYTES = 1 << 24
NO_EVENT_TRACER = ("this executorch runtime was built without its event tracer (the pip wheels are: "
                   "EXECUTORCH_ENABLE_EVENT_TRACER=OFF), so ETDump holds no per-operation times; build executorch "
                   "with it ON for an ETDump/Inspector per-op profile")


def set_threads(threads: int | None) -> int:
    """Size the ExecuTorch threadpool (XNNPACK's workers) to ``threads``; the size now in use.

    The pool is one per process and XNNPACK delegates take it when their method loads, so it is resized
    only while no other ExecuTorch program is loaded here: otherwise the change is refused by name."""
    from executorch.extension.pybindings import portable_lib

    current = int(portable_lib._threadpool_get_thread_count())
    if threads is None or threads == current:
        return current
    if len(_LIVE):
        raise EdgekitError(f"cannot run this ExecuTorch program with {threads} threads: {len(_LIVE)} other program(s) "
                           f"loaded in this process use the process-wide threadpool of {current}",
                           f"close the other ExecuTorch runners first, or open this one with threads={current}")
    portable_lib._unsafe_reset_threadpool(threads)  # safe here: no loaded method holds the pool
    return int(portable_lib._threadpool_get_thread_count())


class ExecuTorchRunner(Runner):
    runtime = "executorch"
    accelerator = "XnnpackBackend"

    def __init__(self, path: Path, threads: int | None = None, profile_ops: bool = False) -> None:
        import json

        from edgekit.quiet import quiet

        with quiet():
            from executorch.runtime import Runtime

            self.threads = set_threads(threads)
            try:
                program = Runtime.get().load_program(Path(path).read_bytes(), enable_etdump=profile_ops,
                                                     debug_buffer_size=ETDUMP_BUFFER_BYTES if profile_ops else 0)
                self._method = program.load_method("forward")
                names = json.loads(program.load_method(IO_METHOD).execute([])[0]) if IO_METHOD in program.method_names else {}
            except Exception as exc:  # the runtime raises RuntimeError with its own status text
                raise ConversionError(
                    f"the ExecuTorch runtime cannot load {Path(path).name}: {first_line(exc)}",
                    "the .pte is corrupt, truncated, or needs a backend or kernel this runtime was not built with",
                ) from exc
        self._program = program  # keeps the loaded program alive while the method runs
        self._profile_ops = profile_ops
        _LIVE.add(self)
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


    def op_profile(self, prepared: Any, runs: int) -> list[dict[str, Any]] | None:
        """Per-op times from the program's ETDump (opened with ``profile_ops``), read with the devtools
        Inspector; None, with the reason in ``op_profile_note``, where the runtime records no events."""
        if not self._profile_ops:
            return None
        for _ in range(runs):
            self._execute(prepared)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgekit-etdump-") as folder:
            etdump, debug = Path(folder) / "run.etdp", Path(folder) / "debug.bin"
            from edgekit.quiet import quiet

            with quiet():
                self._program.write_etdump_result_to_file(str(etdump), str(debug))
            if not etdump.is_file() or etdump.stat().st_size == 0:
                self.op_profile_note = NO_EVENT_TRACER
                return None
            return _inspector_ops(etdump, runs)

    def close(self) -> None:
        _LIVE.discard(self)


def _inspector_ops(etdump: Path, runs: int) -> list[dict[str, Any]]:
    """The ETDump's operator and delegate events, mean milliseconds per run, as the Inspector reads them."""
    from executorch.devtools import Inspector

    ops = []
    for block in Inspector(etdump_path=str(etdump)).event_blocks:
        for event in block.events:
            if event.perf_data is None or event.name in ("Method::execute", "Program::load_method"):
                continue
            kind = event.delegate_backend_name if event.is_delegated_op else ",".join(event.op_types or ()) or "kernel"
            ops.append({"name": event.name, "type": str(kind), "ms": float(sum(event.perf_data.raw)) / runs})
    return ops


def load(path: Path, *, device: str | None = None, threads: int | None = None,
         profile_ops: bool = False) -> ExecuTorchRunner:
    """Load ``path``; ``device`` may only name XnnpackBackend (what this runtime build runs on CPU).
    ``threads`` sizes the process-wide ExecuTorch threadpool that XNNPACK runs on (refused while another
    ExecuTorch program is loaded in the process); ``profile_ops`` records an ETDump for ``op_profile``."""
    if device not in (None, "XnnpackBackend", "CPU", "cpu"):
        raise EdgekitError(f"the ExecuTorch runtime here cannot target {device}",
                           "this host runs XnnpackBackend (CPU); Core ML / MPS / Vulkan / QNN need device builds")
    return ExecuTorchRunner(path, threads, profile_ops)


def probe() -> list[str]:
    """XnnpackBackend when the runtime's native extension is installed (the executorch wheels link XNNPACK
    into it). Found on disk, not imported: loading the runtime imports torch, which device listing and the
    agent must not. The other backends need device builds this host has none of."""
    import importlib.util

    spec = importlib.util.find_spec("executorch")
    folders = [Path(f) / "extension" / "pybindings" for f in (spec.submodule_search_locations or ())] if spec else []
    return ["XnnpackBackend"] if any(any(f.glob("_portable_lib*")) for f in folders if f.is_dir()) else []
