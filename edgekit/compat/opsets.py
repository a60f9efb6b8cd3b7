"""Op sets: which ops a device's accelerator runs, per format, as data files in ``device_profiles/opsets/``.

A profile names one (``opset: edgetpu``) or lists ops inline (``ops: {tflite: [CONV_2D, ...]}``). Op
names are TFLite builtin operator names, ONNX op types and OpenVINO op types. A format left out (None)
means edgekit knows no restriction for it; an empty list means the accelerator runs nothing in it.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from edgekit.errors import ProfileError, did_you_mean
from edgekit.yamlfiles import explain, read_yaml_mapping


class OpList(BaseModel):
    """Allowed ops per format; ``partitioning: prefix`` means only the ops before the first unsupported one
    run on the accelerator (the Edge TPU compiler's behaviour), ``any`` that each unsupported op falls back alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tflite: tuple[str, ...] | None = None
    onnx: tuple[str, ...] | None = None
    openvino: tuple[str, ...] | None = None
    executorch: tuple[str, ...] | None = None
    partitioning: Literal["any", "prefix"] = "any"

    @field_validator("tflite", "onnx", "openvino", "executorch")
    @classmethod
    def _names(cls, ops: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if ops is not None and any(not op.strip() for op in ops):
            raise ValueError("op names must be non-empty strings")
        return ops

    def allowed(self, fmt: str) -> frozenset[str] | None:
        ops = getattr(self, fmt, None)
        return None if ops is None else frozenset(ops)


class OpSet(OpList):
    """A named op set file with its sources."""

    name: str
    description: str
    references: tuple[str, ...] = ()


def _folder():
    return resources.files("edgekit.device_profiles") / "opsets"


def builtin_opsets() -> list[str]:
    """Names of the op sets shipped with edgekit."""
    folder = _folder()
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_opset(name_or_path: str | Path) -> OpSet:
    """A built-in op set by name, or an op set file by path; errors name the file and the field."""
    ref = str(name_or_path)
    if ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        path = Path(ref)
        if not path.is_file():
            raise ProfileError(f"op set file not found: {path}", "check the path, or give a built-in op set name")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    return _builtin(ref)


@lru_cache(maxsize=32)
def _builtin(name: str) -> OpSet:
    names = builtin_opsets()
    if name not in names:
        raise ProfileError(f"unknown op set '{name}'", f"{did_you_mean(name, names)}built-in op sets: {', '.join(names)}")
    text = (_folder() / f"{name}.yaml").read_text("utf-8")
    return _parse(text, f"opsets/{name}.yaml")


def _parse(text: str, where: str) -> OpSet:
    raw = read_yaml_mapping(text, where, "device_profiles/opsets/edgetpu.yaml")
    try:
        return OpSet.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(f"{where} is not a valid op set:\n{explain(exc, OpSet)}", "fix the field(s) named above") from None
