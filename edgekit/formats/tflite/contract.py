"""The deployment contract in a .tflite file: a ``Metadata`` entry of the model flatbuffer (TFLite's own
place for metadata, next to ``TFLITE_METADATA``) named ``edgekit_contract``, pointing at a buffer that holds
the contract's JSON. Written with the flatbuffer schema ``ai_edge_litert`` ships (object API), read without
unpacking the model."""
from __future__ import annotations

from pathlib import Path

from edgekit.atomic import atomic_write_bytes
from edgekit.errors import ContractError, ModelFileError

NAME = "edgekit_contract"
IDENTIFIER = b"TFL3"


def write_contract(path: Path, text: str) -> list[Path]:
    """Store ``text`` in the model's metadata (replacing an earlier contract); returns the files written."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable TFLite flatbuffer: {type(exc).__name__}", "give a .tflite file") from None
    if any((buffer.offset or 0) > 1 for buffer in model.buffers or []):
        raise ContractError(f"{Path(path).name} keeps its weights outside the flatbuffer (buffer offsets)",
                            "edgekit cannot rewrite such a file; the contract stays in the manifest")
    payload = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    model.buffers = list(model.buffers or [])
    model.metadata = list(model.metadata or [])
    entry = next((m for m in model.metadata if _name(m.name) == NAME), None)
    if entry is None:
        buffer = schema.BufferT()
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = NAME, len(model.buffers) - 1
        model.metadata.append(entry)
    model.buffers[entry.buffer].data = payload
    builder = flatbuffers.Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    atomic_write_bytes(Path(path), bytes(builder.Output()))
    return [Path(path)]


def read_contract(path: Path) -> str | None:
    """The contract JSON the file carries, or None."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if _name(entry.Name()) == NAME:
                buffer = model.Buffers(entry.Buffer())
                return bytes(buffer.DataAsNumpy()).decode("utf-8") if buffer.DataLength() else None
    except Exception as exc:  # a truncated or crafted flatbuffer: offsets out of range, bad lengths
        raise ModelFileError(f"{path} has unreadable metadata: {type(exc).__name__}", "rebuild the artifact") from None
    return None


def _name(value: bytes | str | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
