"""Where a profiling run measures: this machine (a fresh child process per artifact) or an agent (a device
reached over the network). Both take the same :class:`Job` and stream the same events, so ``profile()``
has one code path for local and remote runs."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

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


def open_device(device: str, token: str | None, timeout: float, fingerprint: str | None = None) -> MeasuringDevice:
    """``local:*`` is this machine; ``agent://`` / ``http://`` / ``https://HOST:PORT`` is the agent there
    (``https`` with the pinned certificate ``fingerprint``)."""
    if device.startswith(("agent://", "http://", "https://")):
        from edgekit.agent.client import AgentClient

        return AgentClient(device, token=token, timeout=timeout, fingerprint=fingerprint)
    return LocalDevice()
