"""The remote runner: an artifact of any format run on a device that runs ``edgekit agent``.

``open_runner(path, agent="agent://HOST:PORT", token=...)`` (or ``runtime="agent"``) uploads the artifact
once (a session keyed by the files' sha256 and the options; an identical session already loaded is reused)
and answers the same ``Runner`` interface as a local runner: named inputs in, named outputs out, the
device's runtime, accelerator and executed precision. The timed loop (:meth:`measure`), peak memory and the
per-op profile happen on the device, in the process that holds the model, so the network is never timed.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import Cancelled, ProfilingError
from edgekit.formats.runner import Runner
from edgekit.specs import TensorSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from edgekit.formats.base import ArtifactFormat
    from edgekit.profiling.protocol import Settings, Timing

MAX_ANSWER_BYTES = 1 << 30


class AgentRunner(Runner):
    """A ``Runner`` whose model runs on the agent at ``address``; :meth:`close` unloads it there."""

    def __init__(self, path: Path, *, fmt: ArtifactFormat, address: str, token: str | None = None,
                 fingerprint: str | None = None, runtime: str | None = None, device: str | None = None,
                 threads: int | None = None, profile_ops: bool = False, timeout: float = 600.0,
                 cancel: threading.Event | None = None) -> None:
        from edgekit.agent.client import AgentClient
        from edgekit.agent.protocol import RemoteSession

        self.client = AgentClient(address, token=token, timeout=timeout, fingerprint=fingerprint)
        self.path, self.cancel, self.profile_ops = Path(path), cancel, profile_ops
        files = list(fmt.files(self.path))
        header = RemoteSession(format=fmt.name, main=self.path.name, files=tuple(self.client.upload(f) for f in files),
                               runtime=runtime, runtime_device=device, threads=threads, profile_ops=profile_ops)
        meta = self.client.session(header, files)
        self.key: str = meta["session"]
        self.runtime, self.accelerator = meta["runtime"], meta["accelerator"]
        self.executed_precision = meta["executed_precision"]
        self.load_ms, self.baseline_rss_bytes = meta.get("load_ms"), meta.get("baseline_rss_bytes")
        self.threads: int | None = meta.get("threads")  # where the device's runner reports the threads it runs on
        self.inputs = tuple(TensorSpec.model_validate(s) for s in meta["inputs"])
        self.outputs = tuple(TensorSpec.model_validate(s) for s in meta["outputs"])
        self._peak: int | None = None
        self.op_profile_note: str | None = None

    @property
    def address(self) -> str:
        return self.client.address

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"profiling {self.path.name} on the agent at {self.address} was cancelled",
                            "the agent finishes the measurement on its own; nothing of this run was kept")

    def _body(self, feed: dict[str, np.ndarray], **fields: Any) -> bytes:
        from edgekit.agent.wire import body, encode_arrays

        names, data = encode_arrays(feed)
        return body({"names": names, **fields}, data)

    def prepare(self, feed: dict[str, np.ndarray]) -> bytes:
        """The feed cast to the inputs' dtypes (locally: a missing input is named before anything is sent),
        encoded once for the calls that follow."""
        return self._body(self.cast_feed(feed))

    def run_prepared(self, prepared: bytes) -> None:
        self._outputs(prepared)

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._outputs(self.prepare(feed))

    def _outputs(self, prepared: bytes) -> dict[str, np.ndarray]:
        from edgekit.agent.wire import decode_arrays, split_body

        self._check_cancel()
        response = self.client.session_call(self.key, "run", prepared)
        header, data = split_body(response.read())
        return decode_arrays(header.get("names", []), data, MAX_ANSWER_BYTES, "outputs")

    def _events(self, action: str, prepared: bytes, fields: dict[str, Any],
                on_event: Callable[[dict[str, Any]], None]) -> None:
        """Stream ``action``'s events; a lost connection is a ``ProfilingError`` saying so (mid-run)."""
        import http.client

        from edgekit.agent.wire import body, split_body

        header, payload = split_body(prepared)
        response = self.client.session_call(self.key, action, body({**header, **fields}, payload))
        finished = False
        try:
            for line in response:
                self._check_cancel()
                event = json.loads(line)
                if event.get("event") == "error":
                    from edgekit.agent.client import _device_error

                    raise _device_error(str(event.get("kind")), str(event.get("message")), str(event.get("hint") or ""))
                finished = finished or event.get("event") == "done"
                on_event(event)
        except (TimeoutError, ConnectionError, OSError, ValueError, http.client.HTTPException) as exc:
            response.close()
            raise ProfilingError(f"lost the agent at {self.address} mid-run: {exc}",
                                 "results received before are kept; check the device") from None
        finally:
            response.close()
        if not finished:
            raise ProfilingError(f"the agent at {self.address} closed the connection mid-run",
                                 "results received before are kept; check that the agent is still running")

    def measure(self, prepared: bytes, settings: Settings, deadline: float,
                progress: Callable[[float, str], None] | None = None) -> Timing:
        """The protocol's timed loop run on the device (with its own deadline from ``settings``); progress
        events are forwarded, a ``queued`` wait included (the device measures one thing at a time)."""
        from edgekit.profiling.protocol import Timing

        found: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "progress" and progress is not None:
                fraction, message, stage = float(event.get("fraction") or 0.0), str(event.get("message") or ""), event.get("stage")
                progress(fraction, message) if stage == "timing" else progress(fraction, message, str(stage))
            elif event.get("event") == "part":
                found[event["name"]] = event["value"]

        self._events("measure", prepared, {"settings": settings.model_dump(mode="json")}, on_event)
        self._peak = found.get("memory", {}).get("peak_rss_bytes")
        return Timing.model_validate(found["timing"])

    def peak_rss_bytes(self) -> int | None:
        """Peak memory of the device's process that holds the model, as of the last :meth:`measure`."""
        return self._peak

    def op_profile(self, prepared: bytes, runs: int) -> list[dict[str, Any]] | None:
        found: dict[str, Any] = {}
        self._events("ops", prepared, {"runs": runs},
                     lambda event: found.update(event["value"]) if event.get("event") == "part" else None)
        self.op_profile_note = found.get("note")
        return found.get("ops")

    def close(self) -> None:
        """Unload the model on the agent (its process ends, its uploaded files are removed)."""
        try:
            self.client.close_session(self.key)
        except ProfilingError:
            pass  # the agent is gone: nothing is left to unload
