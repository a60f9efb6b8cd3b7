"""The agent's HTTP application (Starlette): who may ask, the job endpoints and the session endpoints
(:mod:`edgekit.agent.session_routes`).

Every request passes :class:`Gate` first: a ``Host`` or ``Origin`` outside the allow-list is refused with 403
before anything else (a page on another site that reaches a loopback agent through DNS rebinding carries its
own name), then ``Authorization: Bearer TOKEN`` is checked in constant time (401 with ``WWW-Authenticate``).
No CORS headers are ever sent, so no browser page may read an answer. Uploads stream to a temp folder
(:mod:`edgekit.agent.uploads`) that is removed on every exit path.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import sys
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from edgekit._version import __version__
from edgekit.agent.jobs import JobRunner, JobState
from edgekit.agent.protocol import HEADER_LENGTH_BYTES, HEAVY_MODULES
from edgekit.agent.session_routes import SessionEndpoints
from edgekit.agent.settings import AgentSettings
from edgekit.agent.uploads import UploadError, receive_job

_CLOSE = {"Connection": "close"}  # an error answer may leave a body unread: never reuse that connection


def refuse(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers={**_CLOSE, **(headers or {})})


class Gate:
    """ASGI middleware: Host and Origin allow-lists (403), then the bearer token (401)."""

    def __init__(self, app: ASGIApp, settings: AgentSettings, token: str) -> None:
        self.app, self.settings, self.token = app, settings, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        response = self._check(headers)
        if response is None:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)

    def _check(self, headers: dict[str, list[str]]) -> Response | None:
        hosts = headers.get("host", [])
        if len(hosts) != 1 or not self.settings.allows_host(hosts[0]):
            return refuse(403, f"host {hosts[0] if hosts else '(none)'!r} is not one this agent answers to; "
                               "start it with --allow-host NAME to add a name")
        origins = headers.get("origin", [])
        if origins and (len(origins) != 1 or not self.settings.allows_origin(origins[0])):
            return refuse(403, f"requests from origin {origins[0]!r} are refused")
        authorization = headers.get("authorization", [])
        scheme, _, given = (authorization[0] if len(authorization) == 1 else "").partition(" ")
        if scheme.lower() != "bearer":
            return refuse(401, "an 'Authorization: Bearer TOKEN' header is required", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), self.token):
            return refuse(401, "wrong token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def info(settings: AgentSettings) -> dict[str, Any]:
    from edgekit.formats.devices import host_info

    return {"agent": "edgekit", "version": __version__, "host": host_info().model_dump(mode="json"),
            "heavy_modules_loaded": [m for m in HEAVY_MODULES if m in sys.modules],
            "limits": {"max_upload_bytes": settings.max_upload_bytes}}


def build_app(settings: AgentSettings, token: str, runner: JobRunner) -> ASGIApp:
    """The ASGI application serving ``/info``, ``POST /jobs``, ``GET /jobs/ID`` and ``/sessions``."""
    info_limiter = anyio.CapacityLimiter(1)
    uploads = anyio.CapacityLimiter(settings.max_pending_uploads)

    async def get_info(request: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(info, settings, limiter=info_limiter))

    async def get_job(request: Request) -> Response:
        state = runner.jobs.get(request.path_params["job_id"])
        if state is None:
            return refuse(404, "no such job (finished jobs are kept for a while)")
        return _stream(state)

    async def post_job(request: Request) -> Response:
        length = _content_length(request)
        if isinstance(length, Response):
            return length
        if runner.full():
            return refuse(503, "the agent is busy with other jobs", {"Retry-After": "10"})
        try:
            uploads.acquire_nowait()
        except anyio.WouldBlock:
            return refuse(503, "too many uploads at once", {"Retry-After": "5"})
        task = asyncio.current_task()
        runner.uploads.add(task)
        try:
            job, folder = await receive_job(request.receive, length, settings)
        except UploadError as exc:
            return refuse(exc.status, exc.message)
        except asyncio.CancelledError:  # the agent is stopping (the upload's folder is already removed)
            return refuse(503, "the agent is shutting down")
        finally:
            runner.uploads.discard(task)
            uploads.release()
        _, state = runner.start(job, folder)
        return _stream(state)

    def _content_length(request: Request) -> int | Response:
        if "transfer-encoding" in request.headers:
            return refuse(411, "a Content-Length is required (no chunked uploads)")
        try:
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            return refuse(411, "a Content-Length is required")
        if length > settings.max_upload_bytes:
            return refuse(413, f"upload of {length} bytes is over the agent's limit of {settings.max_upload_bytes}")
        if length < HEADER_LENGTH_BYTES:
            return refuse(400, "the body is too short to hold a job")
        return length

    routes = [Route("/info", get_info, methods=["GET"]), Route("/jobs", post_job, methods=["POST"]),
              Route("/jobs/{job_id}", get_job, methods=["GET"]),
              *SessionEndpoints(settings, runner, uploads, _content_length, refuse, _stream).routes()]
    app = Starlette(routes=routes)
    app.add_exception_handler(404, lambda request, exc: refuse(404, f"unknown path {request.url.path}"))
    app.add_exception_handler(405, lambda request, exc: refuse(405, f"{request.method} is not allowed here"))
    return Gate(app, settings, token)


def _stream(state: JobState) -> StreamingResponse:
    async def lines():
        async for event in state.follow():
            yield (json.dumps(event) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
