"""The on-device agent: a small HTTP server that profiles uploaded artifacts and streams the results.

Stdlib only (``ThreadingHTTPServer``), plus a model runtime: no TensorFlow or PyTorch. Every request needs
``Authorization: Bearer TOKEN`` (compared in constant time). ``GET /info`` reports the device;
``POST /jobs`` takes a job (see :mod:`edgekit.agent.protocol`) and answers with JSON lines as the
measurement goes; the job keeps running if the client goes away, and ``GET /jobs/ID`` replays its events.
Jobs run one at a time (concurrent runs would disturb each other's numbers). Artifacts are data for a
runtime; nothing in a request is executed.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sys
import tempfile
import threading
import uuid
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgekit._version import __version__
from edgekit.agent.protocol import HEADER_LENGTH_BYTES, HEAVY_MODULES, RemoteJob
from edgekit.errors import EdgekitError
from edgekit.profiling.local import Event, Job, run_child

KEEP_JOBS = 16


class JobState:
    """Events of one job, appended by its worker thread and read by any number of streams."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.finished = False
        self.changed = threading.Condition()

    def add(self, event: Event) -> None:
        with self.changed:
            self.events.append(event)
            self.finished = self.finished or event.get("event") in ("done", "error")
            self.changed.notify_all()

    def follow(self):
        """Yield every event, waiting for new ones until the job finishes."""
        index = 0
        while True:
            with self.changed:
                while index >= len(self.events) and not self.finished:
                    self.changed.wait(timeout=1.0)
                batch, index = self.events[index:], len(self.events)
                finished = self.finished
            yield from batch
            if finished and index >= len(self.events):
                return


class Agent(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], token: str, max_upload_bytes: int) -> None:
        super().__init__(address, Handler)
        self.token = token.encode()
        self.max_upload_bytes = max_upload_bytes
        self.jobs: OrderedDict[str, JobState] = OrderedDict()
        self.run_lock = threading.Lock()  # one measurement at a time
        self.jobs_lock = threading.Lock()

    def start_job(self, job: RemoteJob, folder: Path) -> tuple[str, JobState]:
        job_id = uuid.uuid4().hex
        state = JobState()
        with self.jobs_lock:
            self.jobs[job_id] = state
            while len(self.jobs) > KEEP_JOBS:
                self.jobs.popitem(last=False)
        state.add({"event": "accepted", "job": job_id})
        threading.Thread(target=self._run, args=(job, folder, state), daemon=True).start()
        return job_id, state

    def _run(self, job: RemoteJob, folder: Path, state: JobState) -> None:
        if not self.run_lock.acquire(blocking=False):
            state.add({"event": "progress", "stage": "queued", "fraction": 0.0, "message": "waiting for the job before"})
            self.run_lock.acquire()
        try:
            local = Job(path=str(folder / job.main), format=job.format, runtime_device=job.runtime_device,
                        settings=job.settings, return_outputs=job.return_outputs,
                        dataset=str(folder / job.dataset.name) if job.dataset else None)
            if job.format == "onnx":
                _check_external_data(Path(local.path))
            run_child(local, state.add)
        except EdgekitError as exc:
            state.add({"event": "error", "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint})
        except Exception as exc:  # never leave a client waiting on a job that cannot finish
            state.add({"event": "error", "kind": "agent", "message": f"agent error: {exc}", "hint": ""})
        finally:
            self.run_lock.release()
            shutil.rmtree(folder, ignore_errors=True)
            if not state.finished:
                state.add({"event": "error", "kind": "agent", "message": "the job ended without a result", "hint": ""})


def _check_external_data(model: Path) -> None:
    """Every external-data location of an uploaded ONNX model must stay in its folder. Checked with edgekit's
    own checker where the ``onnx`` package is installed; ONNX Runtime (1.17+) and OpenVINO check it too."""
    from edgekit.sources.onnx import external_data_files

    try:
        external_data_files(model)
    except ImportError:  # no onnx package on this device
        return


def info() -> dict[str, Any]:
    from edgekit.formats.devices import host_info

    return {"agent": "edgekit", "version": __version__, "host": host_info().model_dump(mode="json"),
            "heavy_modules_loaded": [m for m in HEAVY_MODULES if m in sys.modules]}


class Handler(BaseHTTPRequestHandler):
    server: Agent
    protocol_version = "HTTP/1.0"  # the response body ends when the connection closes: simple streaming
    timeout = 60  # seconds a silent client may hold a connection (socket timeout on every read and write)

    def log_message(self, format: str, *args: Any) -> None:  # quiet unless something goes wrong
        return

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip().encode()
        if hmac.compare_digest(given, self.server.token):
            return True
        self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong token"})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path == "/info":
            self._reply(HTTPStatus.OK, info())
        elif self.path.startswith("/jobs/"):
            state = self.server.jobs.get(self.path.removeprefix("/jobs/"))
            if state is None:
                self._reply(HTTPStatus.NOT_FOUND, {"error": "no such job (finished jobs are kept for a while)"})
            else:
                self._stream(state)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"unknown path {self.path}"})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path != "/jobs":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"unknown path {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < HEADER_LENGTH_BYTES:
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length is required"})
            return
        if length > self.server.max_upload_bytes:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        {"error": f"upload of {length} bytes is over the agent's limit of {self.server.max_upload_bytes}"})
            return
        folder = Path(tempfile.mkdtemp(prefix="edgekit-agent-"))
        try:
            job = self._receive(length, folder)
        except ValueError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        _, state = self.server.start_job(job, folder)
        self._stream(state)

    def _receive(self, length: int, folder: Path) -> RemoteJob:
        """Read the job header and its files; sizes and sha256 must match what the header declares."""
        header_size = int.from_bytes(self.rfile.read(HEADER_LENGTH_BYTES), "big")
        if header_size > min(length, 1 << 20):
            raise ValueError("the job header is too large")
        try:
            job = RemoteJob.model_validate_json(self.rfile.read(header_size))
        except ValidationError as exc:
            raise ValueError(f"invalid job: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
        uploads = job.uploads()
        if HEADER_LENGTH_BYTES + header_size + sum(f.size for f in uploads) != length:
            raise ValueError("the body length does not match the sizes the job declares")
        for upload in uploads:
            digest = hashlib.sha256()
            remaining = upload.size
            with open(folder / upload.name, "wb") as handle:
                while remaining:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise ValueError(f"the upload of {upload.name} was cut short")
                    digest.update(chunk)
                    handle.write(chunk)
                    remaining -= len(chunk)
            if digest.hexdigest() != upload.sha256:
                raise ValueError(f"{upload.name} does not match its sha256")
        return job

    def _stream(self, state: JobState) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        try:
            for event in state.follow():
                self.wfile.write((json.dumps(event) + "\n").encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away; the job goes on and can be fetched again with GET /jobs/ID


def serve(host: str, port: int, token: str, max_upload_bytes: int, announce: bool = False) -> None:
    """Run the agent until interrupted; prints the address it listens on (port 0: any free port)."""
    agent = Agent((host, port), token, max_upload_bytes)
    bound_port = agent.server_address[1]
    print(f"edgekit agent listening on http://{host}:{bound_port}", flush=True)
    announcer = None
    if announce:
        from edgekit.agent.discovery import Announcer

        announcer = Announcer(host, bound_port)
    try:
        agent.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if announcer is not None:
            announcer.close()
        agent.server_close()
