"""Receiving a job body: read with deadlines, streamed to a temp folder that never outlives a failure.

The body (see :mod:`edgekit.agent.protocol`) is read message by message from the ASGI ``receive`` with two
limits: no pause longer than ``read_timeout``, and after the first ``read_timeout`` seconds an average of at
least :data:`MIN_UPLOAD_BYTES_PER_SECOND` (a client trickling one byte every few seconds is cut off). The
folder is ``edgekit-agent-<pid>-*`` in the temp folder; it is removed on a bad header, a size or sha256
mismatch, a timeout, a disconnect or a cancelled task (server shutdown); :func:`remove_stale` removes those
of agents that died.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from edgekit.agent.protocol import HEADER_LENGTH_BYTES, ArtifactUpload, RemoteJob, Upload
from edgekit.agent.settings import MIN_UPLOAD_BYTES_PER_SECOND, AgentSettings

PREFIX = "edgekit-agent-"
MAX_HEADER_BYTES = 1 << 20
WRITE_BATCH = 1 << 20


class UploadError(Exception):
    """A body the agent refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Body:
    def __init__(self, receive: Callable[[], Awaitable[dict[str, Any]]], length: int, settings: AgentSettings) -> None:
        self._receive, self.length, self.settings = receive, length, settings
        self.started = time.monotonic()
        self.received = 0
        self.buffer = bytearray()
        self.more = True

    async def _pull(self) -> None:
        if not self.more:
            raise UploadError(400, "the body ended before the sizes the job declares")
        allowed = self.started + self.settings.read_timeout + self.received / MIN_UPLOAD_BYTES_PER_SECOND
        wait = min(self.settings.read_timeout, allowed - time.monotonic())
        try:
            if wait <= 0:
                raise TimeoutError
            with anyio.fail_after(wait):
                message = await self._receive()
        except TimeoutError:
            raise UploadError(408, f"the upload stalled ({self.received} of {self.length} bytes received)") from None
        if message["type"] == "http.disconnect":
            raise UploadError(499, "the client went away mid-upload")
        chunk = message.get("body", b"")
        self.received += len(chunk)
        self.more = message.get("more_body", False)
        if self.received > self.length or self.received > self.settings.max_upload_bytes:
            raise UploadError(413, "the body is longer than its Content-Length or the agent's limit")
        self.buffer += chunk

    async def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._pull()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        while size:
            if not self.buffer:
                await self._pull()
            chunk = bytes(self.buffer[:size])
            del self.buffer[: len(chunk)]
            size -= len(chunk)
            yield chunk


async def receive_bytes(receive: Callable[[], Awaitable[dict[str, Any]]], length: int, settings: AgentSettings) -> bytes:
    """A whole body of ``length`` bytes (a request to a loaded session), read with the same deadlines."""
    return await _Body(receive, length, settings).exactly(length)


async def receive_job(receive: Callable[[], Awaitable[dict[str, Any]]], length: int, settings: AgentSettings,
                      model: type[ArtifactUpload] = RemoteJob) -> tuple[Any, Path]:
    """Read a job body (or, with ``model=RemoteSession``, a session's) of ``length`` bytes; the files land in a
    new folder that the caller then owns."""
    body = _Body(receive, length, settings)
    header_size = int.from_bytes(await body.exactly(HEADER_LENGTH_BYTES), "big")
    if header_size > min(length - HEADER_LENGTH_BYTES, MAX_HEADER_BYTES):
        raise UploadError(400, "the job header is too large")
    try:
        job = model.model_validate_json(await body.exactly(header_size))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise UploadError(400, f"invalid job: {error['loc']}: {error['msg']}") from None
    if HEADER_LENGTH_BYTES + header_size + sum(f.size for f in job.uploads()) != length:
        raise UploadError(400, "the body length does not match the sizes the job declares")
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    try:
        for upload in job.uploads():
            await _save(body, upload, folder / upload.name)
    except BaseException:  # errors, a disconnect, a timeout and a cancelled task (shutdown) alike
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job, folder


async def _save(body: _Body, upload: Upload, path: Path) -> None:
    digest = hashlib.sha256()
    pending = bytearray()
    with open(path, "xb") as handle:
        async for chunk in body.chunks(upload.size):
            pending += chunk
            if len(pending) >= WRITE_BATCH:
                await anyio.to_thread.run_sync(_write, handle, digest, bytes(pending))
                pending.clear()
        _write(handle, digest, bytes(pending))
    if digest.hexdigest() != upload.sha256:
        raise UploadError(400, f"{upload.name} does not match its sha256")


def _write(handle, digest, data: bytes) -> None:
    digest.update(data)
    handle.write(data)


def remove_stale(folder: Path | None = None) -> int:
    """Remove upload folders left by agents that are no longer running; the number removed."""
    removed = 0
    for path in Path(folder or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = re.fullmatch(rf"{PREFIX}(\d+)-.*", path.name)
        if match and path.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def check_external_data(model: Path) -> None:
    """Every external-data location of an uploaded ONNX model must stay in its folder. Checked with edgekit's
    own checker where the ``onnx`` package is installed; ONNX Runtime (1.17+) and OpenVINO check it too."""
    from edgekit.sources.onnx import external_data_files

    try:
        external_data_files(model)
    except ImportError:  # no onnx package on this device
        return
