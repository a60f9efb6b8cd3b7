"""Trial tasks as Ray tasks: builds spread over a cluster's CPU nodes, measurements on the node holding a device.

A task that names a device's custom resource (:func:`edgekit.tune.executor.device_resource`) runs only on a node
that advertises it (``edgekit ray-node --device ID``) and is never retried elsewhere: when no node holds the
device for ``device_wait`` seconds the task fails with :class:`~edgekit.errors.ClusterError`, when its node dies
it fails with :class:`~edgekit.errors.TaskLostError`; the other tasks go on. Ray is imported when an executor is
made, never by ``import edgekit``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any, TypeVar

from edgekit.dependencies import install_line, require
from edgekit.errors import ClusterError, TaskLostError, first_line
from edgekit.tune.executor import device_resource

T = TypeVar("T")

DEVICE_PREFIX = device_resource("")
POLL_SECONDS = 0.5


def _run_task(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """The one Ray remote function: the trial function travels as an argument (registered once per executor)."""
    return fn(*args, **kwargs)


class RayFuture(Future):
    """A task's future; cancelling it cancels the Ray task too."""

    def __init__(self, ref: Any, cancel_task: Callable[[Any], None]) -> None:
        super().__init__()
        self.ref = ref
        self._cancel_task = cancel_task

    def cancel(self) -> bool:
        if not super().cancel():  # cancelled first, so that Ray's cancellation error is not taken for a loss
            return False
        self._cancel_task(self.ref)
        return True


@dataclass
class _Pinned:
    """A task waiting for, or running on, the node that holds its custom resources."""

    future: RayFuture
    needs: dict[str, float]
    name: str
    absent_since: float | None = None


class RayExecutor:
    """A :class:`~edgekit.tune.executor.TrialExecutor` on a Ray cluster.

    ``address``: ``None`` starts a local Ray instance in this process (``num_cpus`` CPUs, holding ``devices``);
    ``HOST:PORT`` (a head's GCS address) or ``auto`` joins a running cluster, with Ray's token authentication
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``). An already initialised Ray is used as
    is. Builds (no custom resource) get ``num_cpus=1`` (or ``resources["CPU"]``), are spread over the nodes and
    retried ``build_retries`` times when their node dies; device tasks get ``num_cpus=0`` unless asked, and no retry.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, devices: Sequence[str] = (),
                 device_wait: float = 30.0, connect_timeout: float = 10.0, build_retries: int = 1,
                 log_to_driver: bool = False) -> None:
        require(["ray"], install_line("ray"), "the Ray executor")
        import ray

        self._ray = ray
        self._device_wait = device_wait
        self._build_retries = build_retries
        self._owned = _connect(ray, address, num_cpus=num_cpus, devices=devices, connect_timeout=connect_timeout,
                               log_to_driver=log_to_driver)
        self._remote = ray.remote(_run_task)
        self._lock = threading.Lock()
        self._futures: set[RayFuture] = set()
        self._pinned: list[_Pinned] = []
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    def submit(self, fn: Callable[..., T], /, *args: Any, resources: Mapping[str, float] | None = None,
               **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` as a Ray task needing ``resources`` (custom resources, ``CPU``)."""
        needs = {name: float(amount) for name, amount in (resources or {}).items()}
        cpus = needs.pop("CPU", None)
        if cpus is None:
            cpus = 0.0 if needs else 1.0  # a device task holds its device, not a build's CPU
        name = getattr(fn, "__qualname__", type(fn).__name__)
        options: dict[str, Any] = {"num_cpus": cpus, "name": name}
        if needs:
            options.update(resources=needs, max_retries=0)
        else:
            options.update(scheduling_strategy="SPREAD", max_retries=self._build_retries)
        ref = self._remote.options(**options).remote(fn, args, kwargs)
        future = RayFuture(ref, self._cancel_task)
        with self._lock:
            self._futures.add(future)
            if needs:
                self._pinned.append(_Pinned(future, needs, name))
                self._start_watchdog()
        ref.future().add_done_callback(lambda done: self._settle(future, done, name))
        return future

    def device_resources(self) -> dict[str, float]:
        """The device resources the cluster's live nodes hold, with their counts."""
        return {name: amount for name, amount in self._ray.cluster_resources().items() if name.startswith(DEVICE_PREFIX)}

    def shutdown(self, wait: bool = True) -> None:
        """Wait for (or cancel) the outstanding tasks, then stop the local Ray instance if this executor started it."""
        with self._lock:
            outstanding = list(self._futures)
        if wait:
            wait_futures(outstanding)
        else:
            for future in outstanding:
                future.cancel()
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=exc_info[0] is None)

    def _cancel_task(self, ref: Any) -> None:
        try:
            self._ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - the task may have finished or its node gone: nothing left to cancel
            pass

    def _settle(self, future: RayFuture, done: Future, name: str) -> None:
        """Copy a Ray task's outcome to its future: the task's own exception as raised, Ray's failures as TaskLostError."""
        with self._lock:
            self._futures.discard(future)
        try:
            outcome = done.result()
        except BaseException as exc:  # noqa: BLE001 - every failure is handed to the caller through the future
            _set(future, exception=_task_exception(self._ray, exc, name))
        else:
            _set(future, result=outcome)

    def _start_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, name="edgekit-ray-devices", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        """Fail pinned tasks whose resources no live node has held for ``device_wait`` seconds."""
        while not self._stop.wait(POLL_SECONDS):
            with self._lock:
                self._pinned = [task for task in self._pinned if not task.future.done()]
                pinned = list(self._pinned)
            if not pinned:
                continue
            try:
                totals = self._ray.cluster_resources()
            except Exception:  # noqa: BLE001 - the GCS is briefly unreachable: look again at the next poll
                continue
            now = time.monotonic()
            for task in pinned:
                absent = [name for name, amount in task.needs.items() if totals.get(name, 0.0) < amount]
                if not absent:
                    task.absent_since = None
                elif task.absent_since is None:
                    task.absent_since = now
                elif now - task.absent_since >= self._device_wait:
                    _set(task.future, exception=_no_node(absent, task.name, self._device_wait))  # before the
                    self._cancel_task(task.future.ref)  # cancellation's own error reaches the future


def _connect(ray: Any, address: str | None, *, num_cpus: int | None, devices: Sequence[str], connect_timeout: float,
             log_to_driver: bool) -> bool:
    """Initialise Ray for ``address``; True when this call started (and so owns) the Ray instance."""
    if ray.is_initialized():
        return False
    target = address or "a new local Ray instance"
    if address not in (None, "auto"):
        _check_reachable(address, connect_timeout)
    local = {"num_cpus": num_cpus, "resources": {device_resource(d): 1.0 for d in devices}, "include_dashboard": False}
    try:
        ray.init(address=address, log_to_driver=log_to_driver, logging_level=logging.WARNING,
                 **(local if address is None else {}))
    except ray.exceptions.AuthenticationError as exc:
        raise ClusterError(f"Ray token authentication is on but this client has no token for {target}",
                           "use the head's token: set RAY_AUTH_TOKEN (`ray get-auth-token` on the head prints it) or "
                           "copy the head's ~/.ray/auth_token", detail=str(exc)) from None
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        hint = ("the address answers, so check the token (RAY_AUTH_TOKEN must be what `ray get-auth-token` prints on the "
                "head; Ray logs InvalidAuthToken when it is not) and that both run the same Ray version"
                if address not in (None, "auto") else "see Ray's message above")
        raise ClusterError(f"cannot start or join {target}: {first_line(exc, 200)}", hint, detail=str(exc)) from None
    return True


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast (within ``timeout``) when nothing accepts connections at ``address`` (``HOST:PORT``)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"'{address}' is not a Ray cluster address", "give HOST:PORT of the head node, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {first_line(exc, 200)}",
                           "start the head with `edgekit ray-node --head` (or `ray start --head`) and check the address, "
                           "port and firewall") from None


def _task_exception(ray: Any, exc: BaseException, name: str) -> BaseException:
    """The exception a task's future raises: the task's own, or TaskLostError when Ray lost the task."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, BaseException) else exc
    if isinstance(exc, ray.exceptions.RayError):
        return TaskLostError(f"task {name} was lost: {first_line(exc, 300)}",
                             "the node or worker running it died or was cut off; the other tasks go on, run it again "
                             "when the node is back", detail=str(exc))
    return exc


def _no_node(absent: list[str], name: str, waited: float) -> ClusterError:
    devices = ", ".join(f"'{resource.removeprefix(DEVICE_PREFIX)}' ({resource})" if resource.startswith(DEVICE_PREFIX)
                        else resource for resource in absent)
    return ClusterError(f"task {name} cannot run: no live node of the Ray cluster holds {devices} (waited {waited:g} s)",
                        "start the device's node with `edgekit ray-node --address HEAD:PORT --device ID`, or check the "
                        "device id")


def _set(future: Future, *, result: Any = None, exception: BaseException | None = None) -> None:
    """Settle ``future`` unless it already is (cancelled, or failed by the watchdog first)."""
    if future.done():
        return
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
