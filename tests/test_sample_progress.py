"""The per-sample progress of long quantization steps: fractions, passes and the time estimate."""
from __future__ import annotations

from edgekit import sample_progress
from edgekit.sample_progress import SampleProgress


def test_estimate_starts_at_the_second_sample_from_the_samples_consumed(monkeypatch):
    clock = iter([0.0, 2.0, 4.0, 6.0, 100.0, 103.0])  # 2 s per sample in pass 1, 3 s in pass 2
    monkeypatch.setattr(sample_progress.time, "perf_counter", lambda: next(clock))
    events: list[tuple[float, str]] = []
    progress = SampleProgress(lambda f, m: events.append((f, m)), "NNCF int8 statistics", 3, start=0.2, end=0.8)
    for _ in range(5):
        progress.tick()
    # the clock is read at construction, at each pass start and at every later tick
    assert [m for _, m in events] == [
        "NNCF int8 statistics: sample 1/3, estimating the time left",
        "NNCF int8 statistics: sample 2/3, about 4 s left",
        "NNCF int8 statistics: sample 3/3, about 2 s left",
        "NNCF int8 statistics: pass 2, sample 1/3, estimating the time left",
        "NNCF int8 statistics: pass 2, sample 2/3, about 6 s left",
    ]
    assert [round(f, 3) for f, _ in events] == [0.4, 0.6, 0.8, 0.4, 0.6]
