"""The one progress event type, consumed by the CLI's progress bar and the GUI."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """``stage`` names the step (load, convert:onnx/int8, validate:onnx/int8, manifest), ``fraction`` in [0, 1]."""

    stage: str
    fraction: float
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def ignore(event: ProgressEvent) -> None:
    """The default callback: drop the event."""
