"""What crosses the wire between client and agent, validated with pydantic on arrival.

A job is one POST body: 8 bytes (big-endian length of the header), the header (a :class:`RemoteJob` as
JSON), then each uploaded file's bytes in the header's order (artifact files, then the dataset).
"""
from __future__ import annotations

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


class RemoteJob(BaseModel):
    """An artifact (its files), optional dataset (.npz) and how to measure it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["tflite", "onnx", "openvino", "executorch"]
    main: str
    files: tuple[Upload, ...] = Field(min_length=1, max_length=16)
    dataset: Upload | None = None
    runtime_device: str | None = Field(default=None, max_length=64)
    settings: Settings = Settings()
    return_outputs: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> RemoteJob:
        names = [u.name for u in self.uploads()]
        if len(set(names)) != len(names):
            raise ValueError("file names repeat")
        if self.main not in names[: len(self.files)]:
            raise ValueError("main must name one of the artifact files")
        return self

    def uploads(self) -> tuple[Upload, ...]:
        return self.files + ((self.dataset,) if self.dataset else ())
