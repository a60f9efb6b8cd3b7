"""Measure one artifact in a fresh child process (``python -m edgekit.profiling.local``).

A fresh process per artifact keeps peak memory (VmHWM) and caches unpolluted by other models. The child
reads a :class:`Job` as JSON on stdin and writes JSON lines on stdout: ``progress`` events, ``part``
events (``load``, ``timing``, ``memory``, ``ops``, ``accuracy``) as each phase ends, then ``done`` or
``error``. Whatever parts arrived are kept when the child fails, times out or dies (status ``partial``).
The agent runs the same child and forwards the same lines.
"""
from __future__ import annotations

import base64
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from edgekit.errors import Cancelled, EdgekitError, ProfilingError  # noqa: F401 (ProfilingError: re-exported)
from edgekit.profiling.protocol import LatencyStats, Settings, Timing, pin_cores, summarize
from edgekit.profiling.report import AccuracyResult, ArtifactProfile, OpTiming

Event = dict[str, Any]
CANCEL_POLL_SECONDS = 0.1
KILL_GRACE_SECONDS = 10.0  # the child stops timing at 80% of its timeout; it is killed this long after the timeout


class Job(BaseModel):
    """One artifact to measure (paths are local to the process that runs the child)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    format: str  # a name of the FORMATS table
    runtime_device: str | None = None  # TFLite delegate, ONNX Runtime execution provider or OpenVINO device
    settings: Settings = Settings()
    dataset: str | None = None
    return_outputs: bool = False  # send the dataset outputs back (for parity against a reference)

    @field_validator("format")
    @classmethod
    def _known_format(cls, name: str) -> str:
        from edgekit.formats import FORMATS

        if name not in FORMATS:
            raise ValueError(f"unknown artifact format '{name}' (known: {', '.join(FORMATS)})")
        return name


# -- parent side -------------------------------------------------------------------------------------


def run_child(job: Job, on_event: Callable[[Event], None], timeout: float | None = None,
              cancel: threading.Event | None = None) -> None:
    """Run ``job`` in a fresh process, passing every event to ``on_event``; a crash or a timeout becomes
    an ``error`` event (never an exception), so the caller always keeps the parts that arrived. Setting
    ``cancel`` kills the process within a fraction of a second and raises ``Cancelled``."""
    timeout = timeout or job.settings.timeout_seconds + KILL_GRACE_SECONDS
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([sys.executable, "-m", "edgekit.profiling.local"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=errors, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            process.stdin.write(job.model_dump_json().encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout
        finished = False
        while not finished:
            if cancel is not None and cancel.is_set():
                process.kill()
                process.wait()
                raise Cancelled(f"profiling {Path(job.path).name} was cancelled", "nothing of this run was kept")
            try:
                line = lines.get(timeout=min(CANCEL_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                process.kill()
                process.wait()
                on_event({"event": "error", "kind": "timeout",
                          "message": f"profiling {Path(job.path).name} did not finish in {timeout:g} s",
                          "hint": "raise the timeout, or lower --runs / --min-time"})
                return
            if line is None:
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            finished = event.get("event") in ("done", "error")
            on_event(event)
        code = process.wait()
        if not finished:
            errors.seek(0)
            tail = errors.read()[-2000:].decode(errors="replace").strip().splitlines()
            on_event({"event": "error", "kind": "crash",
                      "message": f"the process measuring {Path(job.path).name} died (exit code {code})"
                                 + (f": {tail[-1]}" if tail else ""),
                      "hint": "the artifact may be corrupt or the device out of memory; parts measured before are kept"})


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class ResultBuilder:
    """Builds an :class:`ArtifactProfile` from a child's (or an agent's) events."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.fields: dict[str, Any] = dict(base)
        self.stats: LatencyStats | None = None
        self.outputs: np.ndarray | None = None
        self.done = False
        self.error: Event | None = None

    def feed(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "part":
            self._part(event["name"], event["value"])
        elif kind == "done":
            self.done = True
        elif kind == "error":
            self.error = event

    def _part(self, name: str, value: dict[str, Any]) -> None:
        if name == "timing":
            timing = Timing.model_validate(value)
            self.stats = summarize(timing.latencies_ms) if timing.latencies_ms else None
            self.fields.update(first_inference_ms=timing.first_inference_ms, warmup_runs=timing.warmup_runs,
                               latencies_ms=timing.latencies_ms, measured_seconds=timing.measured_seconds,
                               stopped_by=timing.stopped_by)
        elif name == "ops":
            self.fields.update(ops=tuple(OpTiming.model_validate(o) for o in value["ops"]), ops_note=value.get("note"))
        elif name == "accuracy":
            encoded = value.pop("outputs", None)
            if encoded:
                self.outputs = np.load(io.BytesIO(base64.b64decode(encoded)), allow_pickle=False)
            self.fields["accuracy"] = AccuracyResult.model_validate(value)
        else:  # load, memory: plain fields
            self.fields.update(value)

    def result(self) -> ArtifactProfile:
        fields = dict(self.fields)
        if self.error is not None:
            fields.update(status="partial" if self.stats else "failed",
                          error=self.error.get("message"), hint=self.error.get("hint") or None)
        elif not self.done:
            fields.update(status="partial", error="the measurement stopped before it finished")
        elif fields.get("stopped_by") == "deadline":
            fields.update(status="partial", error="the timed runs were cut short by the timeout")
        return ArtifactProfile.model_validate(fields).with_stats(self.stats)


# -- child side --------------------------------------------------------------------------------------


def _child(job: Job, emit: Callable[[Event], None]) -> None:
    import importlib

    from edgekit.formats import get_format
    from edgekit.formats.runner import open_runner
    from edgekit.profiling.loop import run_protocol
    from edgekit.profiling.memory import rss

    settings = job.settings
    affinity = pin_cores(settings.affinity, "this machine")
    for requirement in get_format(job.format).default_runner().requires:  # the runtime is part of the baseline
        try:
            importlib.import_module(requirement.module)
        except ImportError:
            break  # open_runner names what to install

    def opener(profile_ops: bool):
        return open_runner(Path(job.path), job.format, device=job.runtime_device, threads=settings.threads,
                           profile_ops=profile_ops, check_files=False)

    run_protocol(opener, job, emit, affinity=affinity, baseline_rss=rss("VmRSS"))


def main() -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # runtimes that print to stdout must not break the JSON lines

    def emit(event: Event) -> None:
        out.write(json.dumps(event) + "\n")

    try:
        job = Job.model_validate_json(sys.stdin.buffer.read())
        _child(job, emit)
    except EdgekitError as exc:
        emit({"event": "error", "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint})
    except Exception as exc:  # a runtime's own exception: report it as a line, not a traceback
        message = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
        emit({"event": "error", "kind": type(exc).__name__, "message": message, "hint": ""})
    out.flush()


if __name__ == "__main__":
    main()
