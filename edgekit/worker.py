"""Worker processes: framework work for a build runs in a child process of its own.

The child is started with ``python -m edgekit.worker`` (not multiprocessing's spawn, which would re-run
the caller's main script) and talks over two pipes with multiprocessing connections. A native crash,
a hang or an out-of-memory in a converter becomes a ConversionError for that call; the next call
starts a fresh child. Its stderr goes to a log file whose tail is quoted when it dies.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.session import BuildSession


#: BuildSession calls that change what the child holds, in the order a build makes them
STATE_CALLS = ("open", "optimize", "set_validation")


class Cancelled(EdgekitError):
    """The build was cancelled by the caller."""


class InProcessSession:
    """Runs a BuildSession in this process (in-memory models, which cannot be handed to a child)."""

    def __init__(self) -> None:
        self.session = BuildSession()

    def call(self, method: str, *args: Any, progress: ProgressCallback = ignore, timeout: float | None = None) -> Any:
        return getattr(self.session, method)(*args, progress=progress)

    def close(self) -> None:
        self.session = BuildSession()


class WorkerSession:
    """Runs a BuildSession in a child process; restarts it (and re-opens the source) after a crash."""

    def __init__(self, log_dir: Path, cancel: threading.Event | None = None) -> None:
        self.log_dir = log_dir
        self.cancel = cancel or threading.Event()
        self.process: subprocess.Popen | None = None
        self._state_calls: dict[str, tuple[Any, ...]] = {}  # calls that set the child's state, replayed after a crash

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        self.log = tempfile.NamedTemporaryFile(dir=self.log_dir, prefix="worker-", suffix=".log", delete=False)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")  # same set order in every build
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgekit.worker", str(child_read), str(child_write)],
            pass_fds=(child_read, child_write), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=env, start_new_session=True,
        )
        os.close(child_read)
        os.close(child_write)
        self.reader, self.writer = Connection(parent_read), Connection(parent_write)
        for method, args in self._state_calls.items():  # a restart after a crash: bring the child back to the same state
            self._roundtrip(method, args, ignore, None)

    def call(self, method: str, *args: Any, progress: ProgressCallback = ignore, timeout: float | None = None) -> Any:
        if self.process is None or self.process.poll() is not None:
            self._start()
        result = self._roundtrip(method, args, progress, timeout)
        if method in STATE_CALLS:
            self._state_calls[method] = args
        return result

    def _roundtrip(self, method: str, args: tuple[Any, ...], progress: ProgressCallback, timeout: float | None) -> Any:
        self.writer.send((method, args))
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            if self.reader.poll(0.1):
                try:
                    kind, payload = self.reader.recv()
                except (EOFError, OSError):
                    raise self._died(method) from None
                if kind == "event":
                    progress(payload)
                elif kind == "result":
                    return payload
                else:
                    raise payload
            elif self.process.poll() is not None:
                raise self._died(method)
            if self.cancel.is_set():
                self._kill()
                raise Cancelled("the build was cancelled", "nothing half-written was kept")
            if deadline is not None and time.monotonic() > deadline:
                self._kill()
                raise ConversionError(
                    f"{method} did not finish within {timeout:.0f} s and was stopped", "raise the timeout= / --timeout limit"
                )

    def _died(self, method: str) -> ConversionError:
        code = self.process.wait()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        self.log.flush()
        tail = Path(self.log.name).read_text(errors="replace").strip().splitlines()[-5:]
        self.process = None
        return ConversionError(
            f"the converter process crashed during {method} ({how})",
            "this is a crash inside a framework's native code; the log ended with: " + " | ".join(tail)
            if tail else "this is a crash inside a framework's native code",
        )

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.writer.send(("exit", ()))
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._kill()
        self.process = None


def _serve(reader: Connection, writer: Connection) -> None:
    session = BuildSession()

    def send_event(event: ProgressEvent) -> None:
        writer.send(("event", event))

    methods: dict[str, Callable[..., Any]] = {
        "open": session.open, "set_validation": session.set_validation, "build_route": session.build_route,
        "carry_states": session.carry_states, "source_ops": session.source_ops, "optimize": session.optimize,
        "reference_classes": session.reference_classes, "data_probe": session.data_probe,
    }
    while True:
        try:
            method, args = reader.recv()
        except EOFError:
            return
        if method == "exit":
            return
        try:
            writer.send(("result", methods[method](*args, progress=send_event)))
        except EdgekitError as exc:
            writer.send(("error", exc))
        except Exception as exc:  # anything else crosses as a ConversionError with its first line
            import traceback

            traceback.print_exc()
            first = first_line(exc)
            writer.send(("error", ConversionError(f"{method} failed: {type(exc).__name__}: {first}", "see the worker log")))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])), Connection(int(sys.argv[2])))
