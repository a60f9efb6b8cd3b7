"""Progress inside long per-sample steps (NNCF statistics, ONNX Runtime calibration) with a time estimate."""
from __future__ import annotations

import time
from collections.abc import Callable


class SampleProgress:
    """Counts the samples a step consumes and reports a fraction within ``[start, end]`` and the time left.

    A step may read its samples more than once (NNCF's statistics, then bias correction): each pass over
    ``total`` samples is reported as its own pass, with the estimate for that pass. A tick comes as a sample
    is taken, so the estimate starts at the second one, from the samples already consumed.
    """

    def __init__(self, report: Callable[[float, str], None], label: str, total: int,
                 start: float = 0.0, end: float = 1.0) -> None:
        self.report, self.label, self.total = report, label, max(total, 1)
        self.start, self.end = start, end
        self.count = 0
        self.pass_started = time.perf_counter()

    def tick(self) -> None:
        """One more sample consumed."""
        if self.count % self.total == 0:
            self.pass_started = time.perf_counter()
        self.count += 1
        done, pass_number = (self.count - 1) % self.total + 1, (self.count - 1) // self.total + 1
        where = f"pass {pass_number}, " if pass_number > 1 else ""
        fraction = self.start + (self.end - self.start) * done / self.total
        if done == 1:
            self.report(fraction, f"{self.label}: {where}sample 1/{self.total}, estimating the time left")
            return
        elapsed = time.perf_counter() - self.pass_started
        left = elapsed / (done - 1) * (self.total - done + 1)
        self.report(fraction, f"{self.label}: {where}sample {done}/{self.total}, about {_duration(left)} left")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
