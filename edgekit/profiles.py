"""Device profiles: validated data that drives the defaults of every stage of a build.

A profile is a YAML file (safe-loaded) in ``device_profiles/`` or anywhere on disk; ``extends:``
names another profile whose fields it starts from.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgekit.compat.opsets import OpList
from edgekit.errors import ProfileError, did_you_mean
from edgekit.options import QuantScheme
from edgekit.specs import FORMATS
from edgekit.yamlfiles import explain, read_yaml_mapping


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuntimeChoice(_Strict):
    """Which runtime and accelerator runs each format on this device."""

    tflite_delegate: Literal["xnnpack", "gpu", "nnapi", "edgetpu", "vx", "qnn", "none"] = "xnnpack"
    onnx_execution_provider: str = "CPUExecutionProvider"
    openvino_device: str = "CPU"


class Budgets(_Strict):
    """Limits a build must meet; any left out is not checked."""

    max_size_bytes: int | None = Field(default=None, gt=0)
    max_peak_memory_bytes: int | None = Field(default=None, gt=0)
    max_latency_ms: float | None = Field(default=None, gt=0)
    min_cosine: float | None = Field(default=None, ge=-1, le=1)
    min_top1_agreement: float | None = Field(default=None, ge=0, le=1)
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    #: top-1 accuracy an optimization step or an artifact may lose against the source on labelled val_data (0.02 = 2 points)
    max_accuracy_drop: float | None = Field(default=None, ge=0, le=1)


class DeviceProfile(_Strict):
    """What a device runs and how a model must be built for it."""

    name: str
    description: str
    device_class: Literal["cpu", "gpu", "npu"]
    extends: str | None = None
    runtime: RuntimeChoice = RuntimeChoice()
    formats: tuple[Literal["tflite", "onnx", "openvino", "executorch"], ...] = Field(min_length=1)
    precision: Literal["fp32", "fp16", "int8", "dynamic"] = "fp32"
    quantization: QuantScheme = QuantScheme()
    static_shapes: bool = False
    layout: Literal["NHWC", "NCHW", "any"] = "any"
    budgets: Budgets = Budgets()
    references: tuple[str, ...] = ()
    # What the accelerator runs (edgekit.compat): an op set by name or file, or an inline allow-list.
    opset: str | None = None
    ops: OpList | None = None
    supported_precisions: tuple[Literal["fp32", "fp16", "int8", "dynamic"], ...] = ()  # empty: any
    cpu_fallback: bool = True  # unsupported ops run on the host CPU (False: the model does not run)
    allow_float_fallback: bool = True  # False: integer-only accelerator, float ops/IO leave it
    #: the accelerator runs int16 activations with int8 weights (None: where float fallback is allowed)
    int16_activations: bool | None = None

    @model_validator(mode="after")
    def _one_opset(self) -> DeviceProfile:
        if self.opset is not None and self.ops is not None:
            raise ValueError("give either opset (a name or file) or ops (an inline allow-list), not both")
        return self

    @field_validator("formats")
    @classmethod
    def _no_repeats(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(formats)) != len(formats):
            raise ValueError(f"formats repeat: {list(formats)}")
        return formats


def builtin_names() -> list[str]:
    """Names of the profiles shipped with edgekit."""
    folder = resources.files("edgekit.device_profiles")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a built-in profile by name, or a user's profile file by path."""
    return _load(str(name_or_path), ())


@lru_cache(maxsize=64)
def _load_cached_builtin(name: str) -> DeviceProfile:
    return _load(name, ())


def _load(ref: str, chain: tuple[str, ...]) -> DeviceProfile:
    if ref in chain:
        raise ProfileError(f"profiles extend each other in a loop: {' -> '.join((*chain, ref))}", "break the extends: cycle")
    raw, where = _read_raw(ref)
    parent = raw.get("extends")
    if parent is not None:
        if not isinstance(parent, str):
            raise ProfileError(f"{where}: field 'extends' must be a profile name or path", "e.g. extends: cpu-x86")
        base = _load(_resolve_relative(parent, where), (*chain, ref)).model_dump(mode="python")
        raw = _merge(base, raw)
    try:
        profile = DeviceProfile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(f"{where} is not a valid device profile:\n{explain(exc, DeviceProfile)}", "fix the field(s) named above") from None
    return _with_opset(profile, where)


def _with_opset(profile: DeviceProfile, where: str) -> DeviceProfile:
    """Check the profile's op set exists and is valid; a relative .yaml path is taken from the profile's folder."""
    if profile.opset is None:
        return profile
    from edgekit.compat.opsets import load_opset

    opset = profile.opset
    if opset.endswith((".yaml", ".yml")) and not Path(opset).is_absolute() and where.endswith((".yaml", ".yml")):
        candidate = Path(where).parent / opset
        if candidate.is_file():
            opset = str(candidate)
    try:
        load_opset(opset)
    except ProfileError as exc:
        raise ProfileError(f"{where}: field 'opset': {exc.message}", exc.hint) from None
    return profile if opset == profile.opset else profile.model_copy(update={"opset": opset})


def _resolve_relative(parent: str, where: str) -> str:
    candidate = Path(where).parent / parent
    return str(candidate) if where.endswith((".yaml", ".yml")) and candidate.is_file() else parent


def _read_raw(ref: str) -> tuple[dict[str, Any], str]:
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ProfileError(f"profile file not found: {path}", "check the path, or give a built-in profile name")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        names = builtin_names()
        if ref not in names:
            raise ProfileError(
                f"unknown target '{ref}'",
                f"{did_you_mean(ref, names)}built-in targets: {', '.join(names)}; or give a profile .yaml file",
            )
        text, where = (resources.files("edgekit.device_profiles") / f"{ref}.yaml").read_text("utf-8"), f"{ref}.yaml"
    return read_yaml_mapping(text, where, "device_profiles/cpu-x86.yaml"), where


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def list_profiles() -> list[DeviceProfile]:
    """Every built-in profile, validated."""
    return [_load_cached_builtin(name) for name in builtin_names()]


__all__ = ["FORMATS", "Budgets", "DeviceProfile", "RuntimeChoice", "builtin_names", "list_profiles", "load_profile"]
