"""The job process of the desktop app: ``python -m edgekit.gui.job`` reads one request on stdin, runs it
through the public ``edgekit`` API and writes protocol lines (:mod:`edgekit.gui.jobs`) on stdout.

It leads its own process group, so the window can stop it and everything it started. SIGTERM is a
cancel: a conversion stops through ``convert(cancel=...)`` (which stops its worker and keeps nothing
half-written), a profiling run through ``profile(cancel=...)``; any other job stops where it is.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from edgekit.gui.jobs import (
    REQUEST,
    AgentRequest,
    Cancelled,
    CheckRequest,
    ConvertRequest,
    DataRequest,
    DeviceError,
    DevicesRequest,
    Error,
    GraphRequest,
    InspectRequest,
    PreviewRequest,
    ProfileRequest,
    Progress,
    PromoteRequest,
    Report,
    Result,
    TuneRequest,
    convert_arguments,
    encode,
)


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM for jobs without a cancel hook."""


class Channel:
    """Writes protocol lines to the real stdout; fd 1 itself is pointed at stderr so that libraries printing
    to stdout cannot break the protocol."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: BinaryIO = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        with self._lock:
            self._out.write(encode(message))


def run(request: Any, send: Callable[[Any], None], cancel: threading.Event) -> None:
    """Run one request; every outcome is sent as a message."""
    import edgekit

    if isinstance(request, InspectRequest):
        source = edgekit.inspect(request.model, allow_unsafe=request.allow_unsafe)
        send(Result(data=source.model_dump(mode="json")))
    elif isinstance(request, ConvertRequest):
        def progress(event: Any) -> None:
            send(Progress(stage=event.stage, fraction=event.fraction, message=event.message))

        build = edgekit.convert(request.options.model, progress=progress, cancel=cancel, **convert_arguments(request.options))
        send(Result(data=build.model_dump(mode="json")))
    elif isinstance(request, DataRequest):
        report = edgekit.data_report(request.model, request.calibration_data, validation_data=request.validation_data or None,
                                     allow_unsafe=request.allow_unsafe)
        send(Result(data=report.model_dump(mode="json")))
    elif isinstance(request, PreviewRequest):
        send(Result(data=edgekit.preview_data(request.path).model_dump(mode="json")))
    elif isinstance(request, ProfileRequest):
        _profile(request, send, cancel)
    elif isinstance(request, DevicesRequest):
        _devices(request, send)
    elif isinstance(request, AgentRequest):
        from edgekit import AgentClient

        info = AgentClient(request.address, token=request.token, timeout=30.0).info_dict()
        send(Result(data={"address": request.address, "host": info.get("host")}))
    elif isinstance(request, (CheckRequest, GraphRequest)):
        from edgekit.gui.job_graph import run_check, run_graph

        (run_check if isinstance(request, CheckRequest) else run_graph)(request, send, cancel)
    elif isinstance(request, (TuneRequest, PromoteRequest)):
        from edgekit.gui.job_tune import run_promote, run_tune

        (run_tune if isinstance(request, TuneRequest) else run_promote)(request, send, cancel)


def _profile(request: ProfileRequest, send: Callable[[Any], None], cancel: threading.Event) -> None:
    import edgekit
    from edgekit.errors import EdgekitError

    settings = request.settings
    reports = []
    for choice in request.devices:
        def progress(event: edgekit.ProgressEvent, device: str = choice.device) -> None:
            stage, _, artifact = event.stage.partition(":")
            send(Progress(stage=f"{device} {artifact} {stage}", fraction=event.fraction,
                          message=f"{artifact} on {device}: {event.message or stage}"))

        try:
            report = edgekit.profile(request.artifacts, device=choice.device, token=choice.token, threads=settings.threads,
                                     runs=settings.runs, min_seconds=settings.min_seconds, warmup=settings.warmup,
                                     op_profile_runs=settings.op_profile_runs, dataset=settings.dataset or None,
                                     timeout=settings.timeout, progress=progress, cancel=cancel)
        except EdgekitError as exc:
            if cancel.is_set():
                raise
            send(DeviceError(device=choice.device, message=exc.message, hint=exc.hint))
            continue
        data = report.model_dump(mode="json")
        reports.append(data)
        send(Report(device=choice.device, data=data))
    send(Result(data=reports))


def _devices(request: DevicesRequest, send: Callable[[Any], None]) -> None:
    from edgekit import EdgekitError, devices, host_info

    send(Progress(stage="devices", fraction=0.0, message="asking the runtimes what they see"))
    entries = [entry.model_dump(mode="json") for entry in devices()]
    host = host_info(probe=False)
    agents: list[str] = []
    agents_error = None
    if request.scan_seconds > 0:
        from edgekit import discover_agents as browse

        send(Progress(stage="devices", fraction=0.5, message="looking for agents on the network"))
        try:
            agents = browse(request.scan_seconds)
        except (EdgekitError, OSError) as exc:  # no zeroconf, or no network interface to browse on
            agents_error = getattr(exc, "message", str(exc))
    send(Result(data={"host": host.model_dump(mode="json"), "devices": entries, "agents": agents,
                      "agents_error": agents_error}))


def main() -> int:
    from edgekit.quiet import quiet_framework_env

    quiet_framework_env(verbose=os.environ.get("EDGEKIT_VERBOSE") == "1")
    try:
        os.setsid()  # lead a process group: the window stops the whole tree with one killpg
    except OSError:
        pass  # already a group leader
    channel = Channel()
    cancel = threading.Event()
    try:
        request = REQUEST.validate_json(sys.stdin.buffer.read())
    except ValueError as exc:
        channel.send(Error(message=f"the job request is not valid: {exc}", hint="this is a bug in the desktop app"))
        return 2

    def on_term(signum: int, frame: Any) -> None:
        cancel.set()
        if not isinstance(request, (ConvertRequest, ProfileRequest, CheckRequest, TuneRequest)):  # these stop through cancel=
            raise _Stop

    signal.signal(signal.SIGTERM, on_term)
    from edgekit.errors import EdgekitError

    try:
        run(request, channel.send, cancel)
    except _Stop:
        channel.send(Cancelled())
        return 1
    except EdgekitError as exc:
        if cancel.is_set():
            channel.send(Cancelled(message=exc.message))
        else:
            channel.send(Error(message=exc.message, hint=exc.hint))
        return 1
    except Exception as exc:  # a library bug: still plain words in the window, the traceback on stderr
        import traceback

        traceback.print_exc()
        from edgekit.errors import first_line

        channel.send(Error(message=f"{type(exc).__name__}: {first_line(exc, 300)}",
                           hint="an unexpected error inside edgekit; the details are in the job log"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
