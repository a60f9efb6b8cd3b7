"""Where a profiling run measures: this machine (a fresh child process per artifact) or a device running
``edgekit agent``. Both run the one measurement protocol (:func:`edgekit.profiling.loop.run_protocol`)
against a Runner: a local runner in the child, an :class:`~edgekit.formats.agent.AgentRunner` for the
device (its timed runs, memory and per-op profile happen on the device). Both stream the same events."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from edgekit.errors import Cancelled, EdgekitError
from edgekit.profiling.artifacts import ArtifactRef
from edgekit.profiling.local import Event, Job, run_child
from edgekit.profiling.report import HostInfo


class MeasuringDevice(Protocol):
    """A device that measures jobs: ``host_info()`` describes it, ``run_job`` streams a job's events."""

    def host_info(self) -> HostInfo: ...

    def run_job(self, job: Job, ref: ArtifactRef, on_event: Callable[[Event], None],
                cancel: threading.Event | None = None) -> None: ...


class LocalDevice:
    """This machine: every job runs in a fresh ``python -m edgekit.profiling.local`` process."""

    def host_info(self) -> HostInfo:
        from edgekit.formats import devices

        return devices.host_info()

    def run_job(self, job: Job, ref: ArtifactRef, on_event: Callable[[Event], None],
                cancel: threading.Event | None = None) -> None:
        run_child(job, on_event, cancel=cancel)


class AgentDevice:
    """A device running ``edgekit agent``: the protocol runs here against an ``AgentRunner``. An error (a
    lost connection, a runtime's refusal) becomes an ``error`` event, so the parts received before are kept."""

    def __init__(self, url: str, token: str | None, timeout: float, fingerprint: str | None = None) -> None:
        from edgekit.agent.client import AgentClient

        self.client = AgentClient(url, token=token, timeout=timeout, fingerprint=fingerprint)
        self.url, self.token, self.timeout, self.fingerprint = url, self.client.token, timeout, fingerprint

    def host_info(self) -> HostInfo:
        return self.client.host_info()

    def run_job(self, job: Job, ref: ArtifactRef, on_event: Callable[[Event], None],
                cancel: threading.Event | None = None) -> None:
        from edgekit.formats import get_format
        from edgekit.formats.agent import AgentRunner
        from edgekit.profiling.loop import run_protocol

        fmt = get_format(job.format)
        opened: list[AgentRunner] = []

        def opener(profile_ops: bool) -> AgentRunner:
            runner = AgentRunner(ref.path, fmt=fmt, address=self.url, token=self.token, fingerprint=self.fingerprint,
                                 device=job.runtime_device, threads=job.settings.threads, profile_ops=profile_ops,
                                 timeout=job.settings.timeout_seconds + 30, cancel=cancel)
            opened.append(runner)
            return runner

        try:
            run_protocol(opener, job, on_event, affinity=job.settings.affinity, cancel=cancel)
        except Cancelled:
            raise
        except EdgekitError as exc:
            if not opened and not getattr(exc, "from_device", False):
                raise  # the agent refused the upload itself (size limit, busy, token): as a refused job was
            on_event({"event": "error", "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint})


def open_device(device: str, token: str | None, timeout: float, fingerprint: str | None = None) -> MeasuringDevice:
    """``local:*`` is this machine; ``agent://`` / ``http://`` / ``https://HOST:PORT`` is the agent there
    (``https`` with the pinned certificate ``fingerprint``)."""
    if device.startswith(("agent://", "http://", "https://")):
        return AgentDevice(device, token, timeout, fingerprint)
    return LocalDevice()
