"""What crosses the wire between client and agent, validated with pydantic on arrival.

A job is one POST body: 8 bytes (big-endian length of the header), the header (a :class:`RemoteJob` as
JSON), then each uploaded file's bytes in the header's order (artifact files, then the dataset). A session
(``POST /sessions``) is the same body with a :class:`RemoteSession` header and the artifact files only.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgekit.profiling.protocol import Settings

HEADER_LENGTH_BYTES = 8
HEAVY_MODULES = ("tensorflow", "tf_keras", "keras", "torch", "jax")
MAX_NAME_LENGTH = 128
_SAFE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")


class Upload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not _SAFE_NAME.fullmatch(name) or ".." in name:  # fullmatch: no trailing newline either
            raise ValueError("a file name must be a plain name (letters, digits, '.', '_', '-'), no folders")
        return name


class ArtifactUpload(BaseModel):
    """An artifact's files as uploaded: the format, the main file and every file with its size and sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["tflite", "onnx", "openvino", "executorch"]
    main: str
    files: tuple[Upload, ...] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> ArtifactUpload:
        names = [u.name for u in self.uploads()]
        if len(set(names)) != len(names):
            raise ValueError("file names repeat")
        if self.main not in names[: len(self.files)]:
            raise ValueError("main must name one of the artifact files")
        return self

    def uploads(self) -> tuple[Upload, ...]:
        return self.files


class RemoteJob(ArtifactUpload):
    """An artifact (its files), optional dataset (.npz) and how to measure it."""

    dataset: Upload | None = None
    runtime_device: str | None = Field(default=None, max_length=64)
    settings: Settings = Settings()
    return_outputs: bool = False

    def uploads(self) -> tuple[Upload, ...]:
        return self.files + ((self.dataset,) if self.dataset else ())


class RemoteSession(ArtifactUpload):
    """An artifact to load once on the device and run on request (``POST /sessions``), in the runtime and on
    the device (delegate / execution provider / OpenVINO device) named, with ``threads`` and, for the per-op
    profile, ``profile_ops``. Its ``key`` names the loaded session: the same files and options, the same key."""

    runtime: str | None = Field(default=None, max_length=64)
    runtime_device: str | None = Field(default=None, max_length=64)
    threads: int | None = Field(default=None, ge=1, le=1024)
    profile_ops: bool = False

    def key(self) -> str:
        fields = self.model_dump(mode="json", exclude={"files"})
        fields["files"] = sorted((u.name, u.sha256) for u in self.files)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
