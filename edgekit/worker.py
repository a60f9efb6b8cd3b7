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
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edgekit.errors import Cancelled, ConversionError, EdgekitError
from edgekit.messages import Exit, Message
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.quiet import FRAMEWORK_ENV
from edgekit.session import BuildSession
from edgekit.specs import RouteFailure


class InProcessSession:
    """Runs a BuildSession in this process (in-memory models, which cannot be handed to a child)."""

    def __init__(self) -> None:
        self.session = BuildSession()

    def call(self, message: Message, progress: ProgressCallback = ignore, timeout: float | None = None) -> Any:
        return self.session.handle(message, progress)

    def save_log(self, dest: Path, error: EdgekitError) -> Path:
        """Write ``error`` in full to ``dest`` (an in-process build logs to this process's own stderr)."""
        return write_route_log(dest, "", error)

    def close(self) -> None:
        self.session = BuildSession()


class WorkerSession:
    """Runs a BuildSession in a child process; restarts it (and re-opens the source) after a crash."""

    def __init__(self, log_dir: Path, cancel: threading.Event | None = None) -> None:
        self.log_dir = log_dir
        self.cancel = cancel or threading.Event()
        self.process: subprocess.Popen | None = None
        self._state: dict[type, Message] = {}  # the last message of each replayed type, sent again after a crash

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        self.log = tempfile.NamedTemporaryFile(dir=self.log_dir, prefix="worker-", suffix=".log", delete=False)
        self._log_mark = 0
        env = {**FRAMEWORK_ENV, **os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"}  # same set order in every build
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgekit.worker", str(child_read), str(child_write), str(os.getpid())],
            pass_fds=(child_read, child_write), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=env, start_new_session=True,
        )
        os.close(child_read)
        os.close(child_write)
        self.reader, self.writer = Connection(parent_read), Connection(parent_write)
        for message in self._state.values():  # a restart after a crash: bring the child back to the same state
            self._roundtrip(message, ignore, None)

    def call(self, message: Message, progress: ProgressCallback = ignore, timeout: float | None = None) -> Any:
        if self.process is None or self.process.poll() is not None:
            self._start()
        result = self._roundtrip(message, progress, timeout)
        if message.replayed:
            self._state[type(message)] = message
        return result

    def _roundtrip(self, message: Message, progress: ProgressCallback, timeout: float | None) -> Any:
        try:
            return self._wait_for(message, progress, timeout)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the child and its children go now, not after the step
            self._kill()
            raise

    def _wait_for(self, message: Message, progress: ProgressCallback, timeout: float | None) -> Any:
        method = message.name
        self.writer.send(message)
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

    def save_log(self, dest: Path, error: EdgekitError) -> Path:
        """Write what the worker logged since the last call, then ``error`` in full, to ``dest``."""
        logged = b""
        if hasattr(self, "log"):
            self.log.flush()
            data = Path(self.log.name).read_bytes()
            logged, self._log_mark = data[self._log_mark:], len(data)
        return write_route_log(dest, logged.decode(errors="replace"), error)

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
                self.writer.send(Exit())
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._kill()
        self.process = None


def write_route_log(dest: Path, logged: str, error: EdgekitError) -> Path:
    """The log file of a failed route: the worker's output, then the error's message, hint and full detail."""
    from edgekit.atomic import atomic_write_text

    parts = [logged.rstrip(), f"error: {error.message}", f"hint: {error.hint}" if error.hint else "",
             f"full message:\n{error.detail}" if error.detail else ""]
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest, "\n".join(part for part in parts if part) + "\n")
    return dest


def failure_record(exc: EdgekitError, label: str, log: Path | None) -> RouteFailure:
    """The manifest's record of a route that built nothing: message, hint, full detail and the saved log."""
    fmt, precision = label.split("/")
    hint = f"{exc.hint} (full log: {log})" if log else exc.hint
    return RouteFailure(format=fmt, precision=precision, route=label, error=exc.message, hint=hint,
                        detail=exc.detail, log=str(log) if log else None)


def _serve(reader: Connection, writer: Connection) -> None:
    session = BuildSession()

    def send_event(event: ProgressEvent) -> None:
        writer.send(("event", event))

    while True:
        try:
            message = reader.recv()
        except EOFError:
            return
        if isinstance(message, Exit):
            return
        try:
            writer.send(("result", session.handle(message, send_event)))
        except EdgekitError as exc:
            writer.send(("error", exc))
        except Exception as exc:  # anything else crosses as a ConversionError naming its cause, full text kept
            import traceback

            from edgekit.causes import summary_of

            traceback.print_exc()
            writer.send(("error", ConversionError(
                f"{message.name} failed: {type(exc).__name__}: {summary_of(exc)}",
                "the full error is printed with --verbose (and kept in the manifest when a route fails)",
                detail=traceback.format_exc())))


if __name__ == "__main__":
    from edgekit.lifetime import die_with_parent

    die_with_parent(int(sys.argv[3]))
    _serve(Connection(int(sys.argv[1])), Connection(int(sys.argv[2])))
