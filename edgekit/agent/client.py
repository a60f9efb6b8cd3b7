"""Client of ``edgekit agent``: device info; sessions (an artifact loaded once on the device), which the
:class:`~edgekit.formats.agent.AgentRunner` runs, measures and profiles; and whole profiling jobs
(``run_job``, ``POST /jobs``) whose events stream back as they happen."""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edgekit.agent.protocol import HEADER_LENGTH_BYTES, RemoteJob, RemoteSession, Upload
from edgekit.errors import Cancelled, ProfilingError
from edgekit.profiling.report import HostInfo

if TYPE_CHECKING:
    import threading

    from edgekit.profiling.artifacts import ArtifactRef
    from edgekit.profiling.local import Event, Job

TOKEN_ENV = "EDGEKIT_AGENT_TOKEN"
DATASET_NAME = "edgekit-dataset.npz"


class AgentClient:
    """Talks to the agent at ``agent://HOST:PORT`` (or ``http://``; ``https://`` for an agent started with
    ``--tls``) with ``token`` (default: ``$EDGEKIT_AGENT_TOKEN``). ``fingerprint`` pins the TLS certificate
    the agent printed (SHA-256); without it an ``https://`` agent must have a certificate this host trusts."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 600.0, connect_timeout: float = 10.0,
                 fingerprint: str | None = None) -> None:
        parts = urlsplit(url if "://" in url else f"agent://{url}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("agent", "http", "https") or not parts.hostname or not port:
            raise ProfilingError(f"'{url}' is not an agent address", "write it as agent://HOST:PORT or https://HOST:PORT")
        self.host, self.port, self.tls = parts.hostname, port, parts.scheme == "https"
        self.fingerprint = None
        if fingerprint:
            from edgekit.agent.tls import normalize_fingerprint

            if not self.tls:
                raise ProfilingError("a certificate fingerprint needs an https:// agent address",
                                     f"start the agent with --tls and use https://{self.address}")
            self.fingerprint = normalize_fingerprint(fingerprint)
        self.token = token or os.environ.get(TOKEN_ENV)
        if not self.token:
            raise ProfilingError("no agent token given", f"pass --token or set {TOKEN_ENV} (the agent prints or reads it)")
        self.timeout, self.connect_timeout = timeout, connect_timeout

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        """A connection, made now (within ``connect_timeout``; then ``timeout`` for each read), for TLS with
        the certificate checked (pinned) before the token is sent."""
        connection = self._open(min(timeout, self.connect_timeout))
        connection.sock.settimeout(timeout)
        return connection

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        if not self.tls:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            connection.connect()
            return connection
        if self.fingerprint:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the pin below is the check
        else:
            context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            raise ProfilingError(f"the agent at {self.address} has a certificate this host does not trust "
                                 f"({exc.verify_message})",
                                 "pin the fingerprint the agent printed: --agent-fingerprint SHA256") from None
        if self.fingerprint:
            from edgekit.agent.tls import fingerprint

            seen = fingerprint(connection.sock.getpeercert(binary_form=True) or b"")
            if not hmac.compare_digest(seen, self.fingerprint):
                connection.close()
                raise ProfilingError(f"the agent at {self.address} presented a different certificate "
                                     f"(fingerprint {seen}, pinned {self.fingerprint}); nothing was sent",
                                     "if the agent made a new certificate, pin the fingerprint it prints now; "
                                     "otherwise something else answers at that address")
        return connection

    def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                 timeout: float | None = None, accept: tuple[int, ...] = (200,)) -> http.client.HTTPResponse:
        try:
            connection = self._connect(timeout or self.connect_timeout)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise ProfilingError(f"no edgekit agent answers at {self.address}: {exc}",
                                 "start `edgekit agent` on the device and check the address and port") from None
        try:
            try:
                connection.request(method, path, body=body,
                                   headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the agent answered before reading the whole body (a refusal): read that answer
            response = connection.getresponse()
        except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
            connection.close()
            raise ProfilingError(f"the agent at {self.address} did not answer: {exc}",
                                 "check that the agent is still running and reachable") from None
        if response.status == 401:
            connection.close()
            raise ProfilingError(f"the agent at {self.address} refused the token",
                                 f"use the token the agent was started with ({TOKEN_ENV})")
        if response.status not in accept:
            detail = response.read(4096).decode(errors="replace")
            connection.close()
            try:
                answer = json.loads(detail)
                detail = answer.get("error", detail)
            except (ValueError, AttributeError):
                answer = {}
            if response.status == 422 and isinstance(answer, dict):  # the runner's own error on the device
                raise _device_error(str(answer.get("kind")), str(detail), str(answer.get("hint") or ""))
            hint = ("the agent is busy or at its connection limit; try again shortly" if response.status == 503 else
                    "start the agent with --allow-host NAME for the name used here" if response.status == 403 else "")
            raise ProfilingError(f"the agent at {self.address} refused the request ({response.status}): {detail}", hint)
        return response

    def info_dict(self) -> dict[str, Any]:
        """The agent's /info: version, host, runtimes and accelerators, heavy modules loaded."""
        response = self._request("GET", "/info")
        try:
            return json.loads(response.read())
        except ValueError:
            raise ProfilingError(f"{self.address} does not answer like an edgekit agent", "check the port") from None

    def info(self) -> _Info:
        data = self.info_dict()
        return _Info(HostInfo.model_validate(data["host"]), data)

    def host_info(self) -> HostInfo:
        """The agent's machine (a ``MeasuringDevice`` of ``edgekit.profiling.targets``)."""
        return self.info().host

    def run_job(self, job: Job, ref: ArtifactRef, on_event: Callable[[Event], None],
                cancel: threading.Event | None = None) -> None:
        """Upload the artifact (and dataset) and pass every event to ``on_event``. A lost connection or
        a silent agent becomes an ``error`` event, so the parts received so far are kept. Setting ``cancel``
        closes the connection at the next event and raises ``Cancelled`` (the agent finishes the job alone)."""
        files = [(f.name, f) for f in ref.files]
        if job.dataset:
            dataset = Path(job.dataset)
            if dataset.is_dir():
                raise ProfilingError("an agent takes datasets as .npz files",
                                     "save the images and labels with numpy.savez(x=..., y=...)")
            files.append((DATASET_NAME, dataset))
        uploads = [Upload(name=name, size=path.stat().st_size, sha256=_sha256(path)) for name, path in files]
        header = RemoteJob(format=job.format, main=ref.path.name, files=tuple(uploads[: len(ref.files)]),
                           dataset=uploads[-1] if job.dataset else None, runtime_device=job.runtime_device,
                           settings=job.settings, return_outputs=job.return_outputs).model_dump_json().encode()
        length = HEADER_LENGTH_BYTES + len(header) + sum(u.size for u in uploads)

        def body():
            yield len(header).to_bytes(HEADER_LENGTH_BYTES, "big") + header
            for _, path in files:
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        yield chunk

        response = self._request("POST", "/jobs", body=body(), timeout=job.settings.timeout_seconds + 30,
                                 headers={"Content-Length": str(length), "Content-Type": "application/octet-stream"})
        finished = False
        try:
            for line in response:
                if cancel is not None and cancel.is_set():
                    response.close()
                    raise Cancelled(f"profiling {ref.path.name} on the agent at {self.address} was cancelled",
                                    "the agent finishes the job on its own; nothing of this run was kept")
                event = json.loads(line)
                finished = finished or event.get("event") in ("done", "error")
                on_event(event)
        except (TimeoutError, ConnectionError, OSError, ValueError, http.client.HTTPException) as exc:
            on_event({"event": "error", "kind": "agent", "message": f"lost the agent at {self.address} mid-run: {exc}",
                      "hint": "results received before are kept; check the device"})
            return
        if not finished:
            on_event({"event": "error", "kind": "agent", "message": f"the agent at {self.address} closed the connection mid-run",
                      "hint": "results received before are kept; check that the agent is still running"})


    def session(self, header: RemoteSession, files: list[Path]) -> dict[str, Any]:
        """The session of ``header`` on the agent: the one already loaded (same files and options) joined, else
        the artifact's ``files`` uploaded and loaded now. Each call needs one :meth:`close_session`."""
        response = self._request("POST", f"/sessions/{header.key()}/open", accept=(200, 404),
                                 headers={"Content-Length": "0"})
        answer = json.loads(response.read())
        if response.status == 200:
            return answer
        head = header.model_dump_json().encode()
        length = HEADER_LENGTH_BYTES + len(head) + sum(f.size for f in header.files)

        def body():
            yield len(head).to_bytes(HEADER_LENGTH_BYTES, "big") + head
            for path in files:
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        yield chunk

        response = self._request("POST", "/sessions", body=body(), timeout=self.timeout,
                                 headers={"Content-Length": str(length), "Content-Type": "application/octet-stream"})
        return json.loads(response.read())

    def session_call(self, key: str, action: str, data: bytes) -> http.client.HTTPResponse:
        """``POST /sessions/KEY/ACTION`` with a body of :func:`edgekit.agent.wire.body`: the open response."""
        return self._request("POST", f"/sessions/{key}/{action}", body=data, timeout=self.timeout,
                             headers={"Content-Length": str(len(data)), "Content-Type": "application/octet-stream"})

    def close_session(self, key: str) -> None:
        self._request("DELETE", f"/sessions/{key}", accept=(200, 404)).read()

    @staticmethod
    def upload(path: Path) -> Upload:
        return Upload(name=path.name, size=path.stat().st_size, sha256=_sha256(path))


def _device_error(kind: str, message: str, hint: str) -> Exception:
    """The device's error as the same edgekit error class (a ``ConversionError`` stays one), else a ProfilingError."""
    import edgekit.errors

    found = getattr(edgekit.errors, kind, None)
    same = isinstance(found, type) and issubclass(found, edgekit.errors.EdgekitError) \
        and found.__init__ is edgekit.errors.EdgekitError.__init__
    error = found(message, hint) if same else ProfilingError(message, hint)
    error.from_device = True  # the runtime refused the model or its inputs: not a refusal of the request
    return error


class _Info:
    def __init__(self, host: HostInfo, raw: dict[str, Any]) -> None:
        self.host, self.raw = host, raw


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
