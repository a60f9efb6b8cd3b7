"""The agent's session endpoints: an artifact loaded once on the device, then run on named arrays.

``POST /sessions`` uploads an artifact as a job body does (with a :class:`RemoteSession` header, the same
limits) and loads it in a host process; the answer is the session (its ``session`` key, inputs, outputs,
runtime, accelerator, executed precision, load time). ``GET /sessions/KEY`` answers the same for a session
already loaded; ``POST /sessions/KEY/open`` joins it as one more user, so a given artifact is uploaded and
loaded once. ``DELETE /sessions/KEY`` closes it for this user (the last one's close unloads it).
``POST /sessions/KEY/run``, ``/measure`` and ``/ops`` take a body of 8 bytes of header length, a JSON header
(``names`` of the arrays; ``settings`` for measure; ``runs`` for ops) and the arrays as .npz
(:mod:`edgekit.agent.wire`). ``run`` answers the outputs the same way; ``measure`` streams progress, then the
``timing`` and ``memory`` parts (one measurement at a time on the device, jobs included); ``ops`` answers the
per-op profile (or None and why).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgekit.agent.jobs import JobRunner, JobState
from edgekit.agent.protocol import RemoteSession
from edgekit.agent.sessions import Session, SessionError
from edgekit.agent.settings import AgentSettings
from edgekit.agent.uploads import UploadError, receive_bytes, receive_job
from edgekit.agent.wire import body, split_body
from edgekit.errors import DataError

Refuse = Callable[..., Response]
Stream = Callable[[JobState], Response]


class SessionEndpoints:
    """The handlers, sharing the agent's settings, job runner (sessions, job thread) and upload limiter."""

    def __init__(self, settings: AgentSettings, runner: JobRunner, uploads: anyio.CapacityLimiter,
                 content_length: Callable[[Request], int | Response], refuse: Refuse, stream: Stream) -> None:
        self.settings, self.runner, self.sessions, self.uploads = settings, runner, runner.sessions, uploads
        self.content_length, self.refuse, self.stream = content_length, refuse, stream
        self.calls = anyio.CapacityLimiter(1)  # session calls other than timing share one worker thread

    def routes(self) -> list[Route]:
        return [Route("/sessions", self.post_session, methods=["POST"]),
                Route("/sessions/{key:str}", self.get_session, methods=["GET"]),
                Route("/sessions/{key:str}", self.delete_session, methods=["DELETE"]),
                Route("/sessions/{key:str}/open", self.attach, methods=["POST"]),
                Route("/sessions/{key:str}/run", self.action(self.run), methods=["POST"]),
                Route("/sessions/{key:str}/measure", self.action(self.measure), methods=["POST"]),
                Route("/sessions/{key:str}/ops", self.action(self.ops), methods=["POST"])]

    @staticmethod
    def answer(exc: SessionError) -> Response:
        return JSONResponse(exc.answer(), status_code=exc.status, headers={"Connection": "close"})

    def found(self, request: Request) -> Session | Response:
        session = self.sessions.get(request.path_params["key"])
        if session is None:
            return self.refuse(404, "no such session (closed, or evicted by newer ones): open it again")
        return session

    async def post_session(self, request: Request) -> Response:
        length = self.content_length(request)
        if isinstance(length, Response):
            return length
        try:
            self.uploads.acquire_nowait()
        except anyio.WouldBlock:
            return self.refuse(503, "too many uploads at once", {"Retry-After": "5"})
        try:
            header, folder = await receive_job(request.receive, length, self.settings, model=RemoteSession)
        except UploadError as exc:
            return self.refuse(exc.status, exc.message)
        finally:
            self.uploads.release()
        try:
            session = await anyio.to_thread.run_sync(self.sessions.open, header, folder, limiter=self.calls)
        except SessionError as exc:
            return self.answer(exc)
        return JSONResponse(session.meta)

    async def get_session(self, request: Request) -> Response:
        session = self.found(request)
        return session if isinstance(session, Response) else JSONResponse(session.meta)

    async def attach(self, request: Request) -> Response:
        session = self.sessions.attach(request.path_params["key"])
        return self.refuse(404, "no such session: upload it") if session is None else JSONResponse(session.meta)

    async def delete_session(self, request: Request) -> Response:
        closed = await anyio.to_thread.run_sync(self.sessions.close, request.path_params["key"], limiter=self.calls)
        return JSONResponse({"closed": True}) if closed else self.refuse(404, "no such session")

    def action(self, handler: Callable[[Session, dict, bytes], Awaitable[Response]]):
        """An endpoint reading a session request body (header + arrays) with the upload limits."""
        async def endpoint(request: Request) -> Response:
            session = self.found(request)
            if isinstance(session, Response):
                return session
            length = self.content_length(request)
            if isinstance(length, Response):
                return length
            try:
                header, payload = split_body(await receive_bytes(request.receive, length, self.settings))
                header = {**{k: header[k] for k in ("names", "settings", "runs") if k in header},
                          "limit": self.settings.max_upload_bytes}  # arrays may not declare more than an upload holds
                return await handler(session, header, payload)
            except UploadError as exc:
                return self.refuse(exc.status, exc.message)
            except DataError as exc:
                return self.refuse(400, exc.message)
            except SessionError as exc:
                return self.answer(exc)
        return endpoint

    async def run(self, session: Session, header: dict, payload: bytes) -> Response:
        reply, data = await anyio.to_thread.run_sync(session.call, {"op": "run", **header}, payload, limiter=self.calls)
        return Response(body(reply, data), media_type="application/octet-stream")

    async def measure(self, session: Session, header: dict, payload: bytes) -> Response:
        def work(state: JobState) -> None:
            reply, _ = session.call({"op": "measure", **header}, payload, on_event=state.post)
            state.post({"event": "part", "name": "timing", "value": reply["timing"]})
            state.post({"event": "part", "name": "memory", "value": {"peak_rss_bytes": reply.get("peak_rss_bytes"),
                                                                     "affinity": reply.get("affinity")}})
            state.post({"event": "done"})

        return self.stream(self.runner.exclusive(work))

    async def ops(self, session: Session, header: dict, payload: bytes) -> Response:
        def work(state: JobState) -> None:
            reply, _ = session.call({"op": "ops", **header}, payload)
            state.post({"event": "part", "name": "ops", "value": reply})
            state.post({"event": "done"})

        return self.stream(self.runner.exclusive(work))
