"""The one progress event type, consumed by the CLI's progress bar and the GUI."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """``stage`` names the step (load, convert:onnx/int8, validate:onnx/int8, manifest), ``fraction`` in [0, 1]."""

    stage: str
    fraction: float
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def ignore(event: ProgressEvent) -> None:
    """The default callback: drop the event."""


class WatchedFeeds(list):
    """Feeds that, as a consumer iterates them, report each one to ``on_feed(index, count)`` and raise
    ``Cancelled`` once ``cancel`` is set: any loop over feeds becomes cancellable and reports progress."""

    def __init__(self, feeds: Iterable[Any], cancel: threading.Event, on_feed: Callable[[int, int], None],
                 what: str = "the work") -> None:
        super().__init__(feeds)
        self.cancel, self.on_feed, self.what = cancel, on_feed, what

    def __iter__(self) -> Iterator[Any]:
        count = len(self)
        for index in range(count):
            raise_if_cancelled(self.cancel, self.what)
            yield self[index]
            self.on_feed(index + 1, count)


def raise_if_cancelled(cancel: threading.Event | None, what: str = "the work") -> None:
    """Raise ``Cancelled`` when ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        from edgekit.errors import Cancelled

        raise Cancelled(f"{what} was cancelled", "nothing was written")
