"""Runs one job at a time in a child process (``python -m edgekit.gui.job``) with QProcess.

Nothing here blocks the GUI thread: the request is written to the child's stdin, its protocol lines
arrive through ``readyReadStandardOutput``. A child that dies without an answer (a native crash in a
converter, out of memory) becomes a plain error, its stderr's last lines as the hint. ``cancel`` sends
SIGTERM to the child's process group and SIGKILL after a grace period.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

from edgekit.gui.jobs import Cancelled, DeviceError, Error, Progress, Report, Result, Trial, decode
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

STDERR_TAIL_BYTES = 8192
KILL_GRACE_MS = 5000


class JobRunner(QObject):
    """One kind of job (inspect, convert, profile, ...); ``start`` while running is refused."""

    progress = Signal(str, float, str)  # stage, fraction (-1: unknown), message
    report = Signal(str, dict)  # device, ProfileReport as JSON data
    device_error = Signal(str, str, str)  # device, message, hint
    trial = Signal(int, dict)  # a tune trial ended: its number, the study so far (TuneResult as JSON data)
    succeeded = Signal(object)  # the result's data
    failed = Signal(str, str)  # message, hint
    cancelled = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, *, leader_only: bool = False, grace_ms: int = KILL_GRACE_MS) -> None:
        """``leader_only``: a cancel's SIGTERM goes to the job process alone (it lets the work in flight end, a tune
        trial say), the SIGKILL after ``grace_ms`` to its whole group."""
        super().__init__(parent)
        self.leader_only = leader_only
        self.process: QProcess | None = None
        self._buffer = b""
        self._stderr = b""
        self._outcome: Any = None
        self._cancelling = False
        self._closed = False
        self._kill_timer = QTimer(self, singleShot=True, interval=grace_ms)
        self._kill_timer.timeout.connect(lambda: self._signal_group(signal.SIGKILL))

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, request: Any) -> bool:
        """Start the job for ``request`` (a pydantic request model); False if one is already running."""
        if self.process is not None or self._closed:
            return False
        self._buffer, self._stderr, self._outcome, self._cancelling = b"", b"", None, False
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("TF_CPP_MIN_LOG_LEVEL", "2")
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process = process
        process.start(sys.executable, ["-m", "edgekit.gui.job"])
        process.write(request.model_dump_json().encode())
        process.closeWriteChannel()
        self.running_changed.emit(True)
        return True

    def cancel(self) -> None:
        """Ask the job to stop (SIGTERM to its process group), then kill it if it has not stopped in time."""
        if self.process is None or self._cancelling:
            return
        self._cancelling = True
        self._signal_group(signal.SIGTERM, leader_only=self.leader_only)
        self._kill_timer.start()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop any running job and start no more (the window is closing)."""
        self._closed = True
        if self.process is not None:
            self.cancel()
            if not self.process.waitForFinished(wait_ms):
                self._signal_group(signal.SIGKILL)
                self.process.waitForFinished(1000)

    def _signal_group(self, signum: int, leader_only: bool = False) -> None:
        if self.process is None:
            return
        pid = self.process.processId()
        if not pid:
            return
        try:
            if os.getpgid(pid) == pid and not leader_only:
                os.killpg(pid, signum)
            else:  # the child has not made its own group yet
                os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._dispatch(decode(line))

    def _read_stderr(self) -> None:
        self._stderr = (self._stderr + bytes(self.process.readAllStandardError().data()))[-STDERR_TAIL_BYTES:]

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, Progress):
            self.progress.emit(message.stage, -1.0 if message.fraction is None else message.fraction, message.message)
        elif isinstance(message, Report):
            self.report.emit(message.device, message.data)
        elif isinstance(message, DeviceError):
            self.device_error.emit(message.device, message.message, message.hint)
        elif isinstance(message, Trial):
            self.trial.emit(message.number, message.result)
        elif isinstance(message, (Result, Error, Cancelled)):
            self._outcome = message

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._outcome = Error(message=f"the job process could not start: {self.process.errorString()}",
                                  hint=f"check that {sys.executable} runs and has edgekit installed")
            self._finished(-1, QProcess.ExitStatus.CrashExit)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.process is None:
            return
        self._read_stdout()
        if self._buffer:
            self._dispatch(decode(self._buffer))
        self._read_stderr()
        self._kill_timer.stop()
        process, self.process = self.process, None
        process.deleteLater()
        outcome = self._outcome
        self.running_changed.emit(False)
        if isinstance(outcome, Result):
            self.succeeded.emit(outcome.data)
        elif isinstance(outcome, Cancelled) or self._cancelling:
            self.cancelled.emit("cancelled: nothing half-written was kept")
        elif isinstance(outcome, Error):
            self.failed.emit(outcome.message, outcome.hint)
        else:
            self.failed.emit(self._crash_message(code, status), self._stderr_tail())

    def _crash_message(self, code: int, status: QProcess.ExitStatus) -> str:
        if status == QProcess.ExitStatus.CrashExit:
            name = signal.Signals(code).name if code in signal.Signals._value2member_map_ else ""
            return f"the job process crashed{f' ({name})' if name else ''}"
        return f"the job process ended without an answer (exit code {code})"

    def _stderr_tail(self) -> str:
        lines = self._stderr.decode(errors="replace").strip().splitlines()[-3:]
        tail = " | ".join(line.strip() for line in lines)
        return f"a crash inside native code or out of memory; the log ended with: {tail}" if tail else \
            "a crash inside native code or out of memory"
