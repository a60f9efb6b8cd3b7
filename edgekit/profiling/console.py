"""Rich tables and a progress line for ``edgekit devices`` and ``edgekit profile``."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from edgekit.console import console as _console
from edgekit.console import err_console as _errors
from edgekit.console import human_size
from edgekit.profiling.report import HostInfo, ProfileReport
from edgekit.progress import ProgressEvent

if TYPE_CHECKING:
    from edgekit.formats.devices import DeviceEntry

_STATE_STYLE = {"installed": "green", "available": "green", "missing": "red", "not present": "yellow", "error": "red"}


def print_devices(host: HostInfo, entries: list[DeviceEntry], agents: list[str]) -> None:
    """The host, then every runtime and accelerator of every format with its state and how to get it."""
    _console.print(f"[bold]{host.hostname}[/]: {host.cpu}, {host.cpu_count} cores, "
                   f"{human_size(host.memory_bytes) if host.memory_bytes else '?'} memory, {host.system} {host.machine}")
    table = Table("format", "runtime", "device / delegate / provider", "state", "--device", "how to get it",
                  box=box.SIMPLE_HEAD)
    for entry in entries:
        name = f"[bold]{entry.name}[/] {entry.version or ''}" if entry.kind == "runtime" else f"  {entry.name}"
        style = _STATE_STYLE[entry.state]
        table.add_row(entry.format, entry.runtime, name, f"[{style}]{entry.state}[/]", entry.device, entry.install)
    _console.print(table)
    _console.print("agents on the LAN: " + (", ".join(agents) if agents else "none found"))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(report: ProfileReport) -> None:
    table = Table("artifact", "runs on", "median ms (95% CI)", "p90 / p99", "runs", "peak RSS / size", "accuracy", "status",
                  title=f"device {report.device}", box=box.SIMPLE_HEAD)
    for r in report.results:
        ci = f"\n({_ms(r.median_ci_low_ms)}–{_ms(r.median_ci_high_ms)})" if r.median_ms is not None else ""
        accuracy = "-"
        if r.accuracy is not None:
            accuracy = f"{r.accuracy.accuracy:.2%}"
            if r.accuracy.parity is not None:
                accuracy += f"\ncos {r.accuracy.parity.cosine:.5f}"
        status = {"complete": "[green]complete[/]", "partial": "[yellow]partial[/]", "failed": "[red]failed[/]"}[r.status]
        memory = human_size(r.peak_rss_bytes) if r.peak_rss_bytes else "-"
        table.add_row(f"{r.format} {r.precision or ''}\n{r.artifact.rsplit('/', 1)[-1]}", r.accelerator or "-",
                      _ms(r.median_ms) + ci, f"{_ms(r.p90_ms)} / {_ms(r.p99_ms)}", str(r.runs),
                      f"{memory} / {human_size(r.size_bytes)}", accuracy, status)
    _console.print(table)
    for r in report.results:
        if r.error:
            _errors.print(f"[red]error[/] {r.artifact}: {r.error}" + (f"\nhint: {r.hint}" if r.hint else ""), highlight=False)


@contextmanager
def progress_printer() -> Iterator[Callable[[ProgressEvent], None]]:
    """A progress callback printing one transient status line to stderr."""
    with _errors.status("profiling") as status:
        def update(event: ProgressEvent) -> None:
            phase, _, artifact = event.stage.partition(":")
            status.update(f"{artifact}: {phase} {event.message}")

        yield update
