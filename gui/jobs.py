"""The job protocol between the window and its job process (no Qt here, so it is unit-testable).

The window writes one request (a pydantic model, as JSON) to the stdin of ``python -m edgekit.gui.job``;
the job process answers with JSON lines on stdout, each a :data:`Message`: ``progress`` events, a
``report`` per device of a profiling run, ``device_error`` for a device that could not be used, ``trial``
for each ended trial of a tune run, then one
``result``, ``error`` (message and hint of the library's error) or ``cancelled``.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

STEP_KINDS = ("prune", "qat", "distill")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConvertOptions(_Model):
    """What the Convert view collects; remembered between runs and saved in project files."""

    model: str = ""
    target: str = "cpu-x86"
    formats: list[str] = Field(default_factory=list)  # empty: the target's
    precisions: list[str] = Field(default_factory=list)  # empty: the target's
    calibration_data: str = ""
    validation_data: str = ""
    output_dir: str = ""
    force: bool = False
    allow_unsafe: bool = False
    steps: list[dict[str, Any]] = Field(default_factory=list)  # step options, each with its "kind"
    train_data: str = ""
    val_data: str = ""
    contract: str = ""  # the declared deployment contract as YAML (empty: inferred)


class InspectRequest(_Model):
    job: Literal["inspect"] = "inspect"
    model: str
    allow_unsafe: bool = False


class DataRequest(_Model):
    """``edgekit.data_report`` on the Convert view's model and calibration (and validation) data."""

    job: Literal["data"] = "data"
    model: str
    calibration_data: str
    validation_data: str = ""
    allow_unsafe: bool = False


class PreviewRequest(_Model):
    """``edgekit.preview_data`` on a data path (shapes, ranges, label histogram)."""

    job: Literal["preview"] = "preview"
    path: str


class ConvertRequest(_Model):
    job: Literal["convert"] = "convert"
    options: ConvertOptions


class DeviceChoice(_Model):
    """A device to profile on: ``local:cpu|gpu|npu`` or ``agent://HOST:PORT`` with the agent's token."""

    device: str
    token: str | None = None


class ProfileSettings(_Model):
    runs: int = Field(50, ge=1)
    min_seconds: float = Field(1.0, ge=0)
    warmup: int = Field(5, ge=0)
    op_profile_runs: int = Field(10, ge=0)
    threads: int = Field(1, ge=1)
    dataset: str = ""
    timeout: float = Field(600.0, gt=0)


class ProfileRequest(_Model):
    job: Literal["profile"] = "profile"
    artifacts: list[str] = Field(min_length=1)
    devices: list[DeviceChoice] = Field(min_length=1)
    settings: ProfileSettings = ProfileSettings()


class DevicesRequest(_Model):
    job: Literal["devices"] = "devices"
    scan_seconds: float = Field(1.5, ge=0)


class AgentRequest(_Model):
    job: Literal["agent"] = "agent"
    address: str
    token: str


class CheckRequest(_Model):
    """``edgekit.check`` of the Convert view's model for its target, formats and precision (before converting)."""

    job: Literal["check"] = "check"
    model: str
    target: str
    formats: list[str] = Field(default_factory=list)
    precision: str | None = None
    allow_unsafe: bool = False


class GraphRequest(_Model):
    """The graph of a model file placed on ``target``; with ``data``, also ``edgekit.debug``'s int8 error per layer."""

    job: Literal["graph"] = "graph"
    path: str
    target: str | None = None
    data: str = ""
    calibration: str = ""


class TuneSettings(_Model):
    """What the Tune view collects (``edgekit.tune``'s arguments); the same settings resume the same study."""

    model: str = ""
    target: str = "cpu-x86"
    objectives: list[str] = Field(default_factory=lambda: ["latency", "accuracy", "size"])
    constraints: dict[str, float] = Field(default_factory=dict)
    trials: int = Field(20, ge=1)
    seed: int = 0
    formats: list[str] = Field(default_factory=list)  # empty: the target's
    calibration_data: str = ""
    validation_data: str = ""
    output_dir: str = ""
    runs: int = Field(50, ge=1)
    min_seconds: float = Field(1.0, ge=0)


class TuneRequest(_Model):
    """``edgekit.tune``: each ended trial streamed as a ``trial`` message with the study so far."""

    job: Literal["tune"] = "tune"
    settings: TuneSettings


class PromoteRequest(_Model):
    """``edgekit.select_trial``: trial ``trial``'s build published as ``output_dir``."""

    job: Literal["promote"] = "promote"
    trial: int
    output_dir: str


Request = Annotated[InspectRequest | ConvertRequest | ProfileRequest | DevicesRequest | AgentRequest | DataRequest
                    | PreviewRequest | CheckRequest | GraphRequest | TuneRequest | PromoteRequest, Field(discriminator="job")]
REQUEST = TypeAdapter(Request)


class Progress(_Model):
    type: Literal["progress"] = "progress"
    stage: str
    fraction: float | None = None
    message: str = ""


class Report(_Model):
    type: Literal["report"] = "report"
    device: str
    data: dict[str, Any]


class DeviceError(_Model):
    type: Literal["device_error"] = "device_error"
    device: str
    message: str
    hint: str = ""


class Trial(_Model):
    """A tune trial ended: its number and the study so far (``TuneResult`` as JSON data)."""

    type: Literal["trial"] = "trial"
    number: int
    result: dict[str, Any]


class Result(_Model):
    type: Literal["result"] = "result"
    data: Any


class Error(_Model):
    type: Literal["error"] = "error"
    message: str
    hint: str = ""


class Cancelled(_Model):
    type: Literal["cancelled"] = "cancelled"
    message: str = "cancelled"


Message = Annotated[Progress | Report | DeviceError | Trial | Result | Error | Cancelled, Field(discriminator="type")]
MESSAGE = TypeAdapter(Message)


def encode(message: BaseModel) -> bytes:
    """One protocol line."""
    return message.model_dump_json().encode() + b"\n"


def decode(line: bytes | str) -> Any | None:
    """The message on ``line``, or None for a line that is not one (a library printing to stdout)."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        return MESSAGE.validate_python(json.loads(text))
    except (ValueError, ValidationError):
        return None


def step_objects(steps: list[dict[str, Any]]) -> list[Any]:
    """The optimization steps (``edgekit.prune``/``qat``/``distill``) for step option dicts; bad options raise
    the library's InvalidOptionError."""
    import edgekit
    from edgekit.errors import InvalidOptionError

    made = []
    for options in steps:
        options = dict(options)
        kind = options.pop("kind", None)
        if kind not in STEP_KINDS:
            raise InvalidOptionError(f"unknown optimization step '{kind}'", f"choose from: {', '.join(STEP_KINDS)}")
        made.append(getattr(edgekit, kind)(**{k: v for k, v in options.items() if v not in (None, "")}))
    return made


def convert_arguments(options: ConvertOptions) -> dict[str, Any]:
    """Keyword arguments of ``edgekit.convert`` for ``options`` (optimization keywords only with steps)."""
    from edgekit.errors import InvalidOptionError

    if not options.model:
        raise InvalidOptionError("no model chosen", "pick a model file or drop one on the window")
    if not options.output_dir:
        raise InvalidOptionError("no output folder chosen", "pick the folder the artifacts are written to")
    arguments: dict[str, Any] = {
        "target": options.target, "formats": options.formats or None, "precision": options.precisions or None,
        "calibration_data": options.calibration_data or None, "validation_data": options.validation_data or None,
        "output_dir": options.output_dir, "force": options.force, "allow_unsafe": options.allow_unsafe,
    }
    if options.contract.strip():
        from edgekit import contract_from_yaml

        arguments["contract"] = contract_from_yaml(options.contract, "the contract in the editor").document()
    if options.steps:
        if not options.train_data:
            raise InvalidOptionError("optimization steps need training data", "pick an .npz file with arrays x and y")
        arguments.update(optimizations=step_objects(options.steps), train_data=options.train_data,
                         val_data=options.val_data or None)
    return arguments
