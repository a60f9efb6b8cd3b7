"""Named arrays and framed messages on the wire between client, agent and the agent's model hosts.

Arrays travel as an uncompressed ``.npz`` whose members are ``a0``, ``a1``... in the order of the names a
JSON header lists (tensor names such as ``model/conv:0`` are never zip member names). They are read back with
``allow_pickle=False`` after every declared size is checked against a limit (:func:`edgekit.data.read_npz`).
A frame is 8 bytes (big-endian length) of JSON header, then 8 bytes (length) of payload.
"""
from __future__ import annotations

import io
import json
from typing import Any, BinaryIO

import numpy as np

from edgekit.errors import DataError

LENGTH_BYTES = 8
MAX_FRAME_HEADER = 1 << 20


def encode_arrays(arrays: dict[str, np.ndarray]) -> tuple[list[str], bytes]:
    """The names in order and the .npz bytes holding the arrays as ``a0``, ``a1``, ..."""
    names = list(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **{f"a{i}": np.asarray(arrays[n]) for i, n in enumerate(names)})
    return names, buffer.getvalue()


def decode_arrays(names: list[str], data: bytes, limit: int, what: str = "arrays") -> dict[str, np.ndarray]:
    """The arrays of :func:`encode_arrays` back by name; declared sizes over ``limit`` bytes, other members,
    object arrays and a count that does not match ``names`` are refused (``DataError``)."""
    from edgekit.data import read_npz

    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"the {what} come without their names", "send the names in the header")
    arrays = read_npz(io.BytesIO(data), limit=limit, name=what) if data else {}
    expected = {f"a{i}" for i in range(len(names))}
    if set(arrays) != expected:
        raise DataError(f"the {what} hold {len(arrays)} arrays for {len(names)} names", "send one array per name")
    return {name: arrays[f"a{i}"] for i, name in enumerate(names)}


def body(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """A request body: 8 bytes of header length, the JSON header, then the payload (to the end)."""
    text = json.dumps(header).encode()
    return len(text).to_bytes(LENGTH_BYTES, "big") + text + payload


def split_body(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and payload of :func:`body`; a malformed one is a ``DataError``."""
    size = int.from_bytes(data[:LENGTH_BYTES], "big")
    if len(data) < LENGTH_BYTES or size > min(len(data) - LENGTH_BYTES, MAX_FRAME_HEADER):
        raise DataError("the request header does not fit in the body", "send 8 bytes of length, the JSON header, the arrays")
    try:
        header = json.loads(data[LENGTH_BYTES:LENGTH_BYTES + size])
    except ValueError:
        raise DataError("the request header is not JSON", "send a JSON object") from None
    if not isinstance(header, dict):
        raise DataError("the request header is not a JSON object", "send a JSON object")
    return header, data[LENGTH_BYTES + size:]


def write_frame(stream: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    text = json.dumps(header).encode()
    stream.write(len(text).to_bytes(LENGTH_BYTES, "big") + text + len(payload).to_bytes(LENGTH_BYTES, "big") + payload)
    stream.flush()


def read_frame(read: Any, limit: int) -> tuple[dict[str, Any], bytes] | None:
    """One frame from ``read(n) -> bytes`` (exactly n bytes, or b"" at the end); None at the end of the stream."""
    head = read(LENGTH_BYTES)
    if not head:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME_HEADER:
        raise DataError("a frame header is too large", "")
    header = json.loads(read(size))
    length = int.from_bytes(read(LENGTH_BYTES), "big")
    if length > limit:
        raise DataError(f"a frame of {length} bytes is over the limit of {limit}", "send smaller arrays")
    return header, read(length) if length else b""
