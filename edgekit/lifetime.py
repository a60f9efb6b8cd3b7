"""Process lifetime: a worker dies with the process that started it; SIGTERM and SIGHUP stop a CLI like Ctrl-C."""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends: ``PR_SET_PDEATHSIG`` (SIGKILL) on Linux, and on every
    platform a thread that checks the parent pid. Call it before doing any work."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still runs
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="edgekit-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(_WATCH_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM or SIGHUP; handled like Ctrl-C (workers killed, staging removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
_REDELIVER_SECONDS = 0.05
_state: dict[str, Any] = {"depth": 0, "pending": None}


def stop_on_signals() -> None:
    """Turn SIGINT into KeyboardInterrupt and SIGTERM/SIGHUP into :class:`Terminated` in the main thread, raised
    only at safe points: never inside an import (a class being built would wrap it in a RuntimeError, native
    module code may abort) nor inside :func:`deferred_signals`. After the first, further signals are ignored
    so the cleanup runs to its end (SIGKILL still ends the process)."""
    if threading.current_thread() is threading.main_thread():
        for signum in _STOP_SIGNALS:
            signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _state["depth"]:
        _state["pending"] = signum  # raised when the deferred block ends
        return
    if _in_import(frame):  # deliver it again once the import is done
        threading.Timer(_REDELIVER_SECONDS, os.kill, (os.getpid(), signum)).start()
        return
    _stop(signum)


def _stop(signum: int) -> None:
    for each in _STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _in_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def interrupt_of(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or :class:`Terminated`) that ``exc`` wraps, if it wraps one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back for the length of the block (taking a lock, publishing a build,
    cleaning up): one that arrives meanwhile is raised when the block ends, so the block is never left half-done."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        pending = _state["pending"]
        if not _state["depth"] and pending is not None:
            _state["pending"] = None
            _stop(pending)
