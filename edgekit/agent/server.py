"""The on-device agent: profiles uploaded artifacts and streams the results, served by uvicorn.

Endpoints and rules are in :mod:`edgekit.agent.app`; jobs in :mod:`edgekit.agent.jobs`. This module binds
the socket (IPv4 or IPv6, a listen backlog of :data:`BACKLOG`, bind failures as errors with a hint), adds
what uvicorn leaves to the application (a deadline for request headers, a hard cap on open connections),
optional TLS, and a shutdown that stops the running job and removes every upload folder. Needs a model
runtime only: no TensorFlow or PyTorch. Artifacts are data for a runtime; nothing in a request is executed.
"""
from __future__ import annotations

import asyncio
import errno
import socket
from typing import TYPE_CHECKING

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from edgekit.agent.app import build_app
from edgekit.agent.jobs import JobRunner
from edgekit.agent.settings import MAX_WAITING_JOBS, AgentSettings
from edgekit.agent.uploads import remove_stale
from edgekit.errors import InvalidOptionError

if TYPE_CHECKING:
    from edgekit.agent.discovery import Announcer

BACKLOG = 128
KEEP_ALIVE_SECONDS = 5
GRACEFUL_SHUTDOWN_SECONDS = 2  # then uploads still under way are cancelled (and their folders removed)
MAX_HEADER_BYTES = 16 << 10
_TIMEOUT_BODY = b'{"error": "the request headers took too long"}'
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers and a cap on open connections.

    uvicorn answers 503 to requests beyond ``limit_concurrency``; connections beyond ``max_open`` (that
    limit plus a listen backlog's worth) are closed at once, so a flood holds a bounded number of sockets."""

    header_timeout = 30.0
    max_open = 64 + BACKLOG

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_open:
            transport.abort()
            return
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)
        elif not waiting:
            self._cancel_header_timer()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            if self.conn.our_state is h11.IDLE:
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server; on shutdown the running job is stopped and uploads are cancelled first, so their
    streams and folders end before uvicorn waits for connections to close."""

    def __init__(self, config: uvicorn.Config, runner: JobRunner, announcer: Announcer | None) -> None:
        super().__init__(config)
        self.runner, self.announcer = runner, announcer

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await asyncio.to_thread(self.runner.close)
        for upload in list(self.runner.uploads):  # it could not become a job any more
            upload.cancel()
        if self.announcer is not None:
            await asyncio.to_thread(self.announcer.close)
        await super().shutdown(sockets=sockets)
        cancelled = list(self.server_state.tasks)  # uvicorn cancels what outlived the grace period: let it clean up
        if cancelled:
            await asyncio.wait(cancelled, timeout=GRACEFUL_SHUTDOWN_SECONDS)


def bind(settings: AgentSettings) -> socket.socket:
    """A listening socket for ``settings.host``/``port``, or an :class:`InvalidOptionError` saying why not."""
    where = f"[{settings.host}]:{settings.port}" if ":" in settings.host else f"{settings.host}:{settings.port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise InvalidOptionError(f"cannot listen on {where}: {exc.strerror or exc}",
                                 "check --host (e.g. 127.0.0.1, ::1 or 0.0.0.0)") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        hints = {errno.EADDRINUSE: (f"port {settings.port} on {settings.host} is already in use",
                                    "stop the program using it, or choose another --port (0: any free port)"),
                 errno.EADDRNOTAVAIL: (f"{settings.host} is not an address of this machine",
                                       "use one of its addresses, 127.0.0.1, ::1 or 0.0.0.0"),
                 errno.EACCES: (f"no permission to listen on port {settings.port}", "use a port above 1023")}
        message, hint = hints.get(exc.errno, (f"cannot listen on {where}: {exc.strerror or exc}", "check --host and --port"))
        raise InvalidOptionError(message, hint) from None
    return sock


def serve(settings: AgentSettings, token: str, announce: bool = False) -> None:
    """Run the agent until SIGINT/SIGTERM; prints the URL it listens on (port 0: any free port)."""
    remove_stale()
    ssl_files, fingerprint = {}, None
    if settings.tls:
        from edgekit.agent.tls import default_state_dir, ensure_certificate

        cert, key, fingerprint = ensure_certificate(settings.state_dir or default_state_dir(), sorted(settings.host_names))
        ssl_files = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    sock = bind(settings)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    protocol = type("AgentProtocol", (GuardedProtocol,), {"header_timeout": settings.read_timeout,
                                                          "max_open": settings.max_connections + BACKLOG})
    runner = JobRunner(MAX_WAITING_JOBS)
    config = uvicorn.Config(build_app(settings, token, runner), http=protocol, ws="none", lifespan="off",
                            loop="asyncio", interface="asgi3", limit_concurrency=settings.max_connections,
                            backlog=BACKLOG, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                            h11_max_incomplete_event_size=MAX_HEADER_BYTES, proxy_headers=False, server_header=False,
                            log_level="error", access_log=False, log_config=None, **ssl_files)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"edgekit agent listening on {'https' if settings.tls else 'http'}://{shown}:{settings.port}", flush=True)
    if fingerprint:
        print(f"tls certificate sha256 fingerprint: {fingerprint}", flush=True)
    announcer = None
    if announce:
        from edgekit.agent.discovery import Announcer

        announcer = Announcer(settings.host, settings.port, fingerprint=fingerprint)
    try:
        _Server(config, runner, announcer).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
