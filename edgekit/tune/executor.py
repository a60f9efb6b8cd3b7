"""Where tune trials run: in this process's pool by default, or on a distributed engine (Ray).

Every executor has the same shape as `concurrent.futures.Executor`, plus resource requests: `resources` names
what a task needs beyond a CPU (a device's custom resource, so a measurement runs on the node holding it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class TrialExecutor(Protocol):
    """Runs trial tasks (builds, measurements) and returns their futures."""

    def submit(
        self, fn: Callable[..., T], /, *args: Any, resources: Mapping[str, float] | None = None, **kwargs: Any
    ) -> Future[T]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class LocalExecutor:
    """The default: tasks run in this machine's thread pool (builds already run in worker processes)."""

    def __init__(self, max_workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="edgekit-tune")

    def submit(
        self, fn: Callable[..., T], /, *args: Any, resources: Mapping[str, float] | None = None, **kwargs: Any
    ) -> Future[T]:
        """Run `fn(*args, **kwargs)`; `resources` is accepted for the common shape and needs nothing here."""
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def device_resource(device_id: str) -> str:
    """The custom resource naming one attached device, held by the node (or process) that reaches it."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in device_id)
    return f"edgekit_device_{safe}"
