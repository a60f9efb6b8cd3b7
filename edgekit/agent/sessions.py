"""Artifacts loaded once on the agent's device and run on request, each in its own host process.

A session is keyed by :meth:`RemoteSession.key` (the files' sha256 and the options); clients that ask for
the same key share it (counted: the last one's close ends it); its uploaded files stay in their upload
folder while it is open. At most :data:`MAX_SESSIONS` are open: opening one more closes the least recently
used, and those idle for :data:`IDLE_SECONDS`. Closing a session (or the agent) ends its process and removes
its folder. Calls are blocking: the application runs them on worker threads, one call at a time per session.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.agent.protocol import RemoteSession
from edgekit.agent.wire import read_frame, write_frame

MAX_SESSIONS = 4
IDLE_SECONDS = 600.0  # a session nobody used for this long is closed when another one opens (its client went away)
OPEN_TIMEOUT_SECONDS = 300.0
MAX_REPLY_BYTES = 1 << 30


class SessionError(Exception):
    """A call the session could not answer: the HTTP status, and the runner's error kind, message and hint."""

    def __init__(self, status: int, message: str, kind: str = "ProfilingError", hint: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.hint = status, message, kind, hint

    def answer(self) -> dict[str, str]:
        return {"error": self.message, "kind": self.kind, "hint": self.hint}


class Session:
    """One host process holding one loaded runner."""

    def __init__(self, key: str, folder: Path) -> None:
        self.key, self.folder = key, folder
        self.meta: dict[str, Any] = {}
        self.users = 1  # clients that opened it and did not close it yet
        self.used = time.monotonic()
        self.lock = threading.Lock()
        self.process = subprocess.Popen([sys.executable, "-m", "edgekit.agent.host"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})

    def call(self, header: dict[str, Any], payload: bytes = b"", timeout: float = OPEN_TIMEOUT_SECONDS,
             on_event: Callable[[dict[str, Any]], None] | None = None) -> tuple[dict[str, Any], bytes]:
        """Send one request and return the answer; ``event`` frames before it go to ``on_event``."""
        with self.lock:
            self.used = deadline = time.monotonic()
            deadline += timeout
            try:
                write_frame(self.process.stdin, header, payload)
                while True:
                    frame = read_frame(lambda n: self._read(n, deadline), MAX_REPLY_BYTES)
                    if frame is None:
                        raise SessionError(500, f"the process running {self.meta.get('main', 'the model')} died "
                                                f"(exit code {self.process.poll()})", hint="open the session again")
                    if "event" in frame[0]:
                        if on_event is not None:
                            on_event(frame[0])
                        continue
                    break
            except (OSError, ValueError) as exc:
                self.end()
                raise SessionError(500, f"the session's process stopped answering: {exc}", hint="open it again") from None
            finally:
                self.used = time.monotonic()
        reply, data = frame
        if not reply.pop("ok", False):
            status = 400 if reply.get("kind") == "DataError" else 422  # the arrays sent, or the model's runtime
            raise SessionError(status, str(reply.get("message")), str(reply.get("kind")), str(reply.get("hint") or ""))
        return reply, data

    def _read(self, size: int, deadline: float) -> bytes:
        chunks, fd = [], self.process.stdout.fileno()
        while size:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                self.end()
                raise SessionError(504, "the session's process did not answer in time", hint="open it again")
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                if chunks:
                    raise SessionError(500, "the session's process died mid-answer", hint="open it again")
                return b""
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


class Sessions:
    """The open sessions, least recently used first."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._open: OrderedDict[str, Session] = OrderedDict()
        self._loading: set[Session] = set()  # ended by close_all too, so a shutdown never waits on a load
        self._lock = threading.Lock()
        self.closed = False

    def get(self, key: str) -> Session | None:
        with self._lock:
            session = self._open.get(key)
            if session is not None:
                self._open.move_to_end(key)
            return session

    def attach(self, key: str) -> Session | None:
        """The loaded session ``key`` with one more user, or None."""
        with self._lock:
            session = self._open.get(key)
            if session is not None:
                session.users += 1
                self._open.move_to_end(key)
            return session

    def open(self, header: RemoteSession, folder: Path) -> Session:
        """Load the artifact in ``folder`` in a new host process (the folder then belongs to the session); an
        identical session loaded meanwhile is used instead (and the folder removed)."""
        key = header.key()
        same = self.attach(key)
        if same is not None:
            shutil.rmtree(folder, ignore_errors=True)
            return same
        with self._lock:
            if self.closed:
                shutil.rmtree(folder, ignore_errors=True)
                raise SessionError(503, "the agent is shutting down")
            session = Session(key, folder)
            self._loading.add(session)
        try:
            if header.format == "onnx":
                from edgekit.agent.uploads import check_external_data

                check_external_data(folder / header.main)
            session.meta, _ = session.call({"op": "open", "path": str(folder / header.main), "format": header.format,
                                            "runtime": header.runtime, "device": header.runtime_device,
                                            "threads": header.threads, "profile_ops": header.profile_ops})
        except BaseException as exc:
            session.end()
            from edgekit.errors import EdgekitError

            if isinstance(exc, EdgekitError):
                raise SessionError(422, exc.message, type(exc).__name__, exc.hint) from None
            raise
        finally:
            with self._lock:
                self._loading.discard(session)
        session.meta.update(session=key, main=header.main, format=header.format)
        evicted = []
        with self._lock:
            if self.closed:
                evicted.append(session)
            elif key in self._open:  # loaded by another client while this one loaded: keep theirs
                evicted.append(session)
                session = self._open[key]
                session.users += 1
            else:
                self._open[key] = session
                idle = [k for k, s in self._open.items() if k != key and time.monotonic() - s.used > IDLE_SECONDS]
                evicted += [self._open.pop(k) for k in idle]
                while len(self._open) > self.limit:
                    evicted.append(self._open.popitem(last=False)[1])
        for old in evicted:
            old.end()
        if self.closed:
            raise SessionError(503, "the agent is shutting down")
        return session

    def close(self, key: str) -> bool:
        """One user fewer; the last one's close ends the session. False when there is no such session."""
        with self._lock:
            session = self._open.get(key)
            if session is None:
                return False
            session.users -= 1
            if session.users > 0:
                return True
            del self._open[key]
        with session.lock:
            session.end()
        return True

    def close_all(self) -> None:
        with self._lock:
            self.closed = True
            sessions = [*self._open.values(), *self._loading]
            self._open.clear()
        for session in sessions:
            session.end()
