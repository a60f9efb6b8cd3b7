"""The profiling report: a versioned pydantic schema, written as JSON (and HTML by edgekit.profiling.html)."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from edgekit._version import __version__
from edgekit.atomic import atomic_write_text
from edgekit.profiling.protocol import LatencyStats, Settings

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpTiming(_Model):
    """One operation (layer) of the executed graph, mean milliseconds per inference."""

    name: str
    type: str
    ms: float
    share: float  # of the sum over all profiled operations


class Parity(_Model):
    """The artifact's first output against the reference's on the same samples."""

    reference: str
    output: str
    samples: int
    cosine: float
    max_abs_error: float
    top1_agreement: float | None = None


class AccuracyResult(_Model):
    dataset: str
    samples: int
    accuracy: float
    output: str  # the output whose argmax is the prediction
    parity: Parity | None = None


class ArtifactProfile(_Model):
    """Everything measured for one artifact on one device. Statistics are None when timing did not finish."""

    artifact: str
    format: Literal["tflite", "onnx", "openvino", "executorch"]
    precision: str | None = None
    size_bytes: int
    device: str
    runtime: str | None = None
    accelerator: str | None = None  # delegate / execution provider / OpenVINO device really used
    executed_precision: str | None = None
    status: Literal["complete", "partial", "failed"] = "complete"
    error: str | None = None
    hint: str | None = None
    threads: int | None = None
    affinity: tuple[int, ...] | None = None
    load_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_runs: int | None = None
    runs: int = 0
    measured_seconds: float | None = None
    stopped_by: str | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None
    median_ci_low_ms: float | None = None
    median_ci_high_ms: float | None = None
    median_ci_confidence: float | None = None
    baseline_rss_bytes: int | None = None  # the measuring process with the runtime imported, no model yet
    peak_rss_bytes: int | None = None  # VmHWM of the measuring process after the timed runs
    latencies_ms: tuple[float, ...] = ()
    ops: tuple[OpTiming, ...] = ()
    ops_note: str | None = None
    accuracy: AccuracyResult | None = None

    def with_stats(self, stats: LatencyStats | None) -> ArtifactProfile:
        return self if stats is None else self.model_copy(update=stats.model_dump())


class HostInfo(_Model):
    """The machine that ran the models."""

    hostname: str
    system: str
    machine: str
    cpu: str
    cpu_count: int
    memory_bytes: int | None = None
    python: str
    runtimes: dict[str, str] = {}
    accelerators: dict[str, list[str]] = {}


class ProfileReport(_Model):
    """The result of :func:`edgekit.profile`: one entry per artifact, with settings and the host."""

    schema_version: int = SCHEMA_VERSION
    created: str
    edgekit_version: str = __version__
    device: str
    host: HostInfo | None = None
    settings: Settings
    results: tuple[ArtifactProfile, ...] = ()

    @property
    def partial(self) -> bool:
        """True when any artifact did not finish every measurement."""
        return any(r.status != "complete" for r in self.results)

    def result(self, format: str, precision: str | None = None) -> ArtifactProfile:
        for item in self.results:
            if item.format == format and (precision is None or item.precision == precision):
                return item
        raise KeyError(f"no {format} {precision or ''} result in this report")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.to_json())
        return path

    def save_html(self, path: str | Path) -> Path:
        from edgekit.profiling.html import render

        path = Path(path)
        atomic_write_text(path, render(self))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProfileReport:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.model_validate(data)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
