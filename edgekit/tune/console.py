"""The tune run on the terminal: one line per trial as it ends, then the Pareto front as a rich table."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from edgekit.console import console, err_console, human_size
from edgekit.progress import ProgressCallback, ProgressEvent
from edgekit.specs import Build
from edgekit.tune.front import TrialRecord, fastest
from edgekit.tune.report import HTML_NAME, JSON_NAME, TuneResult


@contextlib.contextmanager
def trial_printer() -> Iterator[tuple[ProgressCallback, Callable[[TrialRecord], None]]]:
    """A progress callback (the current task on stderr) and a per-trial line printer."""

    def progress(event: ProgressEvent) -> None:
        if event.fraction == 0.0 and event.message:
            err_console.print(f"[dim]{escape(event.message)}[/dim]", highlight=False)

    def on_trial(record: TrialRecord) -> None:
        m = record.measurement
        if record.state == "complete" and m is not None:
            text = (f"trial {record.number}: {record.config.label()}  {m.median_ms:.3f} ms "
                    f"[{m.ci_low_ms:.3f}, {m.ci_high_ms:.3f}]  accuracy {record.values.get('accuracy', float('nan')):.4f}"
                    + (f"  ({'; '.join(record.violations)})" if record.violations else ""))
            err_console.print(escape(text), highlight=False)
        else:
            err_console.print(f"[red]trial {record.number}: {escape(record.config.label())} {record.state}: "
                              f"{escape(record.reason or '')}[/red]", highlight=False)

    yield progress, on_trial


def print_result(result: TuneResult) -> None:
    """The front (latency with its interval, accuracy, size), the fastest point and the failures."""
    front = result.front
    best, tied = fastest(list(result.trials))
    table = Table(title=f"Pareto front: {Path(result.model).name} on {result.target} "
                        f"({len(result.trials)} trials, {', '.join(result.objectives)})")
    for column in ("trial", "configuration", "latency ms", "95% interval", "accuracy", "size"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for record in front:
        m, b = record.measurement, record.build
        low, high = record.interval or (0.0, 0.0)
        table.add_row(str(record.number), escape(record.config.label()), f"{m.median_ms:.3f}" if m else "-",
                      f"[{low:.3f}, {high:.3f}]", f"{record.values.get('accuracy', 0):.4f}",
                      human_size(b.size_bytes) if b and b.size_bytes else "-")
    console.print(table)
    if best is not None:
        others = ", ".join(str(r.number) for r in tied)
        note = f"; within a quarter octave of (or its interval overlaps) trial(s) {others}: not ranked" if tied else ""
        note += "" if best in front else "; off the front: tied in latency with a smaller or more accurate point"
        console.print(f"fastest point meeting the constraints: trial {best.number} ({escape(best.config.label())}){note}")
    else:
        console.print("[red]no trial met the constraints[/red]")
    failed = [r for r in result.trials if r.state != "complete"]
    for record in failed:
        console.print(f"[red]trial {record.number} {record.state}[/red]: {escape(record.reason or '')}", highlight=False)
    for device, why in result.lost_devices.items():
        console.print(f"[red]device lost[/red] {escape(device)}: {escape(why)}")
    folder = Path(result.folder)
    console.print(f"study {result.study}; report {folder / HTML_NAME}; every trial {folder / JSON_NAME}")
    console.print(f"promote a point with: edgekit tune --select N --out {result.output_dir}")


def print_selected(trial: int, build: Build) -> None:
    artifact = build.artifacts[0]
    console.print(f"trial {trial} promoted to {build.output_dir}: {artifact.format} {artifact.precision} "
                  f"{human_size(artifact.size_bytes)} ({Path(artifact.path).name}); its plan: edgekit-plan.json")
