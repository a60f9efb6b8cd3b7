"""Runs one job at a time in a child process (``python -m edgekit.gui.job``) with QProcess.

Nothing here blocks the GUI thread: the request is written to the child's stdin, its protocol lines
arrive through ``readyReadStandardOutput``. A child that dies without an answer (a native crash in a
converter, out of memory) becomes a plain error, its stderr's last lines as the hint. ``cancel`` sends
SIGTERM to the child's process group and SIGKILL after a grace period.

Every job keeps its own state (:class:`_Job`: process, buffers, outcome, cancel flag, kill timer) and its
process's signals are bound to that job, so the end of a cancelled job is reported as its own even when the
next job has already started (opening model B while A still loads).
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


class _Job(QObject):
    """One child process and everything learned from it; its signals carry the job itself."""

    message = Signal(object, object)  # job, decoded protocol message
    ended = Signal(object, int, object)  # job, exit code, exit status

    def __init__(self, parent: QObject, grace_ms: int = KILL_GRACE_MS) -> None:
        super().__init__(parent)
        self.process = QProcess(self)
        self.kill_timer = QTimer(self, singleShot=True, interval=grace_ms)
        self.kill_timer.timeout.connect(self._kill)
        self.buffer = b""
        self.stderr = b""
        self.outcome: Any = None
        self.cancelling = False
        self.done = False
        self.process.readyReadStandardOutput.connect(self.read_stdout)
        self.process.readyReadStandardError.connect(self.read_stderr)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)

    def _kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def signal_group(self, signum: int, leader_only: bool = False) -> None:
        if self.done:
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

    def read_stdout(self) -> None:
        if self.done:
            return
        self.buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.message.emit(self, decode(line))

    def read_stderr(self) -> None:
        if not self.done:
            self.stderr = (self.stderr + bytes(self.process.readAllStandardError().data()))[-STDERR_TAIL_BYTES:]

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.outcome = Error(message=f"the job process could not start: {self.process.errorString()}",
                                 hint=f"check that {sys.executable} runs and has edgekit installed")
            self._finished(-1, QProcess.ExitStatus.CrashExit)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.done:
            return
        self.read_stdout()
        if self.buffer:
            self.message.emit(self, decode(self.buffer))
        self.read_stderr()
        self.done = True
        self.kill_timer.stop()
        self.ended.emit(self, code, status)
        self.deleteLater()


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
        self.grace_ms = grace_ms
        self._job: _Job | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._job is not None

    @property
    def process(self) -> QProcess | None:
        """The running job's process (None when idle)."""
        return self._job.process if self._job is not None else None

    def start(self, request: Any) -> bool:
        """Start the job for ``request`` (a pydantic request model); False if one is already running."""
        if self._job is not None or self._closed:
            return False
        job = _Job(self, self.grace_ms)
        process = job.process
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("TF_CPP_MIN_LOG_LEVEL", "2")
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        job.message.connect(self._dispatch)
        job.ended.connect(self._finished)
        self._job = job
        process.start(sys.executable, ["-m", "edgekit.gui.job"])
        process.write(request.model_dump_json().encode())
        process.closeWriteChannel()
        self.running_changed.emit(True)
        return True

    def cancel(self) -> None:
        """Ask the job to stop (SIGTERM to its process group), then kill it if it has not stopped in time."""
        job = self._job
        if job is None or job.cancelling:
            return
        job.cancelling = True
        job.signal_group(signal.SIGTERM, leader_only=self.leader_only)
        job.kill_timer.start()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop any running job and start no more (the window is closing)."""
        self._closed = True
        job = self._job
        if job is not None:
            self.cancel()
            if not job.process.waitForFinished(wait_ms):
                job.signal_group(signal.SIGKILL)
                job.process.waitForFinished(1000)

    def _dispatch(self, job: _Job, message: Any) -> None:
        if job is not self._job:  # a job that was already reported
            return
        if isinstance(message, Progress):
            self.progress.emit(message.stage, -1.0 if message.fraction is None else message.fraction, message.message)
        elif isinstance(message, Report):
            self.report.emit(message.device, message.data)
        elif isinstance(message, DeviceError):
            self.device_error.emit(message.device, message.message, message.hint)
        elif isinstance(message, Trial):
            self.trial.emit(message.number, message.result)
        elif isinstance(message, (Result, Error, Cancelled)):
            job.outcome = message

    def _finished(self, job: _Job, code: int, status: QProcess.ExitStatus) -> None:
        if self._job is job:
            self._job = None
        # the outcome is reported before running_changed, whose handlers may start the next job
        outcome = job.outcome
        if isinstance(outcome, Result):
            self.succeeded.emit(outcome.data)
        elif isinstance(outcome, Cancelled) or job.cancelling:
            self.cancelled.emit(outcome.message if isinstance(outcome, Cancelled) and outcome.message != "cancelled"
                                else "cancelled")
        elif isinstance(outcome, Error):
            self.failed.emit(outcome.message, outcome.hint)
        else:
            self.failed.emit(_crash_message(code, status), _stderr_tail(job.stderr))
        self.running_changed.emit(False)


def _crash_message(code: int, status: QProcess.ExitStatus) -> str:
    if status == QProcess.ExitStatus.CrashExit:
        name = signal.Signals(code).name if code in signal.Signals._value2member_map_ else ""
        return f"the job process crashed{f' ({name})' if name else ''}"
    return f"the job process ended without an answer (exit code {code})"


def _stderr_tail(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()[-3:]
    tail = " | ".join(line.strip() for line in lines)
    return f"a crash inside native code or out of memory; the log ended with: {tail}" if tail else \
        "a crash inside native code or out of memory"
