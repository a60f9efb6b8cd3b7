"""The Runner interface shared by every runtime, and ``open_runner``: an artifact opened in its runtime."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import DataError
from edgekit.specs import TensorSpec

if TYPE_CHECKING:
    from edgekit.profiling.protocol import Settings, Timing


class Runner(ABC):
    """An artifact loaded in a runtime: named inputs in, named outputs out (float outputs dequantized)."""

    runtime: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    #: the precision the device really executes, e.g. "f32" even where the CPU could run bf16
    executed_precision: str = "f32"

    @abstractmethod
    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference; ``feed`` maps input names to arrays."""

    def cast_feed(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``feed`` in the inputs' dtypes: floats quantized with the input's scale and zero point where the
        input is quantized, other values cast (a float64 array for a float32 input, Python ints ...)."""
        absent = [spec.name for spec in self.inputs if spec.name not in feed]
        if absent:
            raise DataError(f"no value for the input '{absent[0]}'", f"the model's inputs: {', '.join(s.name for s in self.inputs)}")
        prepared = {}
        for spec in self.inputs:
            value = np.asarray(feed[spec.name])
            is_quantized = spec.scale is not None and np.issubdtype(np.dtype(spec.dtype), np.integer)
            if is_quantized and np.issubdtype(value.dtype, np.floating):
                value = quantize(value, spec)
            shape = tuple(spec.shape)
            if None not in shape and value.shape != shape and value.size == int(np.prod(shape)) \
                    and tuple(d for d in value.shape if d != 1) == tuple(d for d in shape if d != 1):
                value = value.reshape(shape)  # only size-1 axes differ (a scalar given as [1]): the same values
            prepared[spec.name] = np.asarray(value.astype(spec.dtype, copy=False), order="C")  # keeps 0-d (ascontiguousarray makes it [1])
        return prepared

    # -- profiling: inputs prepared once, then a lean call per timed run --------------------------

    #: what actually executes the model: the delegate, execution provider or device used
    accelerator: str = "CPU"

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        """Convert ``feed`` once into whatever :meth:`run_prepared` needs (default: the feed itself)."""
        return feed

    def run_prepared(self, prepared: Any) -> None:
        """One inference on inputs from :meth:`prepare`, outputs left in the runtime (for timing)."""
        self.run(prepared)

    def op_profile(self, prepared: Any, runs: int) -> list[dict[str, Any]] | None:
        """Per-operation times (``name``, ``type``, ``ms`` per run) over ``runs`` inferences, or None
        where the runtime does not expose them. Only runners opened with ``profile_ops=True`` give them."""
        return None

    #: why ``op_profile`` gives None (shown in the report), where the runner knows better than the default
    op_profile_note: str | None = None
    #: set by runners that time their own load and memory where the model runs (a device over the network)
    load_ms: float | None = None
    baseline_rss_bytes: int | None = None

    def measure(self, prepared: Any, settings: Settings, deadline: float,
                progress: Callable[[float, str], None] | None = None) -> Timing:
        """The profiling protocol's timed loop over :meth:`run_prepared` (see ``edgekit.profiling.protocol``),
        where the model runs; ``deadline`` is a ``time.monotonic()`` value. ``progress(fraction, message)``
        is called on the way (a remote runner may add a third argument, the stage, e.g. ``"queued"``)."""
        from edgekit.profiling.protocol import measure

        return measure(lambda: self.run_prepared(prepared), settings, deadline, progress)

    def peak_rss_bytes(self) -> int | None:
        """Peak resident memory of the process that runs the model (this one for a local runner)."""
        from edgekit.profiling.memory import rss

        return rss("VmHWM")

    def close(self) -> None:
        """Release what the runner holds outside this process (a remote session); local runners hold nothing."""
        return None


def quantize(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float values to the integer dtype of a quantized input, with its scale and zero point."""
    info = np.iinfo(np.dtype(spec.dtype))
    scaled = np.round(array / spec.scale) + spec.zero_point
    return np.clip(scaled, info.min, info.max).astype(spec.dtype)


def dequantize(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer values of a quantized output back to float32."""
    return ((array.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


def open_runner(path: str | Path, fmt: str | None = None, *, runtime: str | None = None, device: str | None = None,
                threads: int | None = None, profile_ops: bool = False, check_files: bool = True,
                agent: str | None = None, token: str | None = None, agent_fingerprint: str | None = None) -> Runner:
    """Load the artifact at ``path`` in a runtime, ready to ``run``.

    ``fmt`` (tflite, onnx, openvino, executorch) is sniffed from the file's content when not given, and must
    match it when given. ``runtime`` picks one of the format's runners (default: its first, or a declared
    fallback where the first is not installed); a missing runtime is a ``MissingDependencyError`` with the
    line that installs it. ``device`` is a delegate, execution provider or OpenVINO device the runner declares.
    ``profile_ops`` turns on the runtime's per-operation profiler (slower runs: not for timing).
    ``check_files=False`` skips the companion check (external data beside the model, the IR's .bin) where
    the caller did it already: the profiling child, whose parent or agent checked the files it was given.
    ``agent`` (``agent://HOST:PORT`` or ``https://HOST:PORT``, with ``token`` and the TLS ``agent_fingerprint``)
    runs the artifact on that device instead (``runtime="agent"`` or a runtime name of the device): the
    artifact is uploaded once and every call goes over the network, behind the same ``Runner`` interface.
    """
    from edgekit.errors import InvalidOptionError, ModelFileError
    from edgekit.formats import get_format
    from edgekit.formats.sniff import sniff_artifact

    path = Path(path)
    found = sniff_artifact(path)
    if fmt is not None and fmt != found.name:
        get_format(fmt)  # an unknown name is an option error
        raise ModelFileError(f"{path.name} is a {found.title} file, not {fmt}", f"open it as {found.name}")
    if runtime == "agent" and agent is None:
        raise InvalidOptionError("runtime 'agent' needs the agent's address", "pass agent='agent://HOST:PORT' and its token")
    if agent is not None:
        from edgekit.formats.base import AGENT_RUNNER

        remote = None if runtime in (None, "agent") else found.runner(runtime).runtime  # an unknown name fails here
        return AGENT_RUNNER.open(path, fmt=found, address=agent, token=token, fingerprint=agent_fingerprint,
                                 runtime=remote, device=device, threads=threads, profile_ops=profile_ops)
    spec = found.runner(runtime) if runtime is not None else found.default_runner()
    spec.require(found.name)
    if check_files:
        found.files(path)  # companions (external data, .bin) present and beside the file
    return spec.open(path, device=device, threads=threads, profile_ops=profile_ops)
