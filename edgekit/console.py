"""Rich tables and progress bars for the CLI."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgekit.compat.report import CompatibilityReport
from edgekit.optimize.report import OptimizationReport
from edgekit.profiles import DeviceProfile
from edgekit.progress import ProgressCallback, ProgressEvent
from edgekit.specs import Artifact, Build, ModelSource, shape_text

console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


@contextlib.contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """A transient progress bar on stderr, one line per stage."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=not err_console.is_terminal) as bar:
        tasks: dict[str, TaskID] = {}

        def on_event(event: ProgressEvent) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = bar.add_task(event.message or event.stage, total=1.0)
            bar.update(tasks[event.stage], completed=event.fraction, description=event.message or event.stage)

        yield on_event


def _fmt(value: float | None, digits: int = 5) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_optimization(report: OptimizationReport) -> None:
    """The optimization chain, one row per step after the source's own row."""
    table = Table(title=f"optimization on {report.train_samples} training / {report.val_samples} held-out samples")
    metric = "accuracy" if report.task == "classification" else "mse"
    for column in ("step", metric, "parameters", "sparsity", "weights", "seconds"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for r in report.records:
        value = f"{r.accuracy:.2%}" if r.accuracy is not None else _fmt(r.loss, 4)
        table.add_row(r.step, value, f"{r.parameters:,}", f"{r.sparsity:.1%}", human_size(r.weight_bytes), f"{r.seconds:.1f}")
    console.print(table)


def _ci(value: float | None, interval: tuple[float, float] | None, digits: int) -> str:
    """A value with its confidence interval under it."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + (f"\n[dim][{interval[0]:.{digits}f}, {interval[1]:.{digits}f}][/]" if interval else "")


_VERDICT_COLOURS = {"passed": "green", "inconclusive": "yellow", "failed": "red"}


def verdict_cell(artifact: Artifact) -> str:
    """passed / inconclusive / failed (or over budget), with where the validation samples came from."""
    verdict = artifact.verdict
    text = "over budget" if verdict == "failed" and artifact.validation.status == "passed" else verdict
    origin = artifact.validation.data_origin + (" (!)" if artifact.validation.on_calibration else "")
    return f"[{_VERDICT_COLOURS[verdict]}]{text}[/]\n[dim]n={artifact.validation.samples} {origin}[/]"


def print_build(build: Build, verbose: bool = False) -> None:
    if build.optimization is not None:
        print_optimization(build.optimization)
    labelled = any(a.validation.accuracy is not None for a in build.artifacts)
    table = Table(title=f"edgekit build for {build.target} ({build.source.framework}): 95% intervals under each value")
    columns = ("format", "precision", "size", *(("accuracy",) if labelled else ()), "cosine", "top-1 agr.", "max abs err",
               "budgets", "fallback", "status", "file")
    for column in columns:
        table.add_column(column, justify="right" if column in ("size", "accuracy", "cosine", "top-1 agr.", "max abs err") else "left")
    for a in build.artifacts:
        v = a.validation
        acc = v.accuracy_check
        accuracy = (_ci(v.accuracy, (acc.low, acc.high) if acc else None, 3),) if labelled else ()
        table.add_row(a.format, a.precision, human_size(a.size_bytes), *accuracy, _ci(v.cosine, v.cosine_interval, 5),
                      _ci(v.top1_agreement, v.top1_interval, 3), _fmt(v.max_abs_error, 4), _budgets_cell(a),
                      _fallback_cell(a), verdict_cell(a), Path(a.path).name)
    for f in build.failures:
        table.add_row(f.format, f.precision, "-", *(("-",) if labelled else ()), "-", "-", "-", "-", "-", "[red]no artifact[/]", escape(f.error))
    console.print(table)
    for a in build.artifacts:
        colour = _VERDICT_COLOURS[a.verdict]
        if a.validation.message:
            console.print(f"[{colour}]{a.format}/{a.precision}[/]: {a.validation.message}")
        for b in a.budgets:
            if b.status in ("failed", "inconclusive"):
                console.print(f"[{colour}]{a.format}/{a.precision}[/]: budget {b.message}")
        if a.verdict == "inconclusive":
            console.print(f"  hint: validate on more samples (validation_data= / --validation){_needed(a)}, "
                          "or accept it with --allow-inconclusive")
    for f in build.failures:
        console.print(f"[red]{f.format}/{f.precision}[/]: " + escape(f.error) + (f"\n  hint: {escape(f.hint)}" if f.hint else ""))
        if verbose and f.detail:
            console.print(f"  the converter's full message:\n{escape(f.detail)}", highlight=False)
    for warning in dict.fromkeys(n for a in build.artifacts for n in a.notes if n.startswith("warning:")):
        console.print(f"[yellow]{escape(warning)}[/]")
    console.print(f"artifacts in {build.output_dir}\nmanifest: {build.manifest_path}")


def _needed(artifact: Artifact) -> str:
    counts = [artifact.validation.samples_needed, *(b.samples_needed for b in artifact.budgets)]
    counts = [c for c in counts if c]
    return f": about {max(counts)} would decide it at the observed values" if counts else ""


def _budgets_cell(artifact: Artifact) -> str:
    if not artifact.budgets:
        return "-"
    failed = [b.name for b in artifact.budgets if b.status == "failed"]
    undecided = [b.name for b in artifact.budgets if b.status == "inconclusive"]
    measured = [b for b in artifact.budgets if b.status != "not_measured"]
    if failed:
        return f"[red]failed: {', '.join(failed)}[/]"
    return f"[yellow]inconclusive: {', '.join(undecided)}[/]" if undecided else f"[green]{len(measured)} passed[/]"


def _fallback_cell(artifact: Artifact) -> str:
    report = artifact.compatibility
    stats = report.stats.get(artifact.format) if report else None
    if stats is None or not stats.opset_known:
        return "-"
    return f"{stats.ops_fallback}/{stats.ops_total} ops, {stats.fallback_fraction:.0%}"


def print_compatibility(report: CompatibilityReport) -> None:
    """Findings of a compatibility check, then per format how much would fall back."""
    colours = {"error": "red", "fallback": "yellow", "change": "cyan", "info": "dim"}
    table = Table(title=f"edgekit check for {report.target} ({report.stage}, {report.precision})")
    for column in ("severity", "certainty", "format", "layer", "op", "finding", "hint"):
        table.add_column(column)
    for f in report.findings:
        table.add_row(f"[{colours[f.severity]}]{f.severity}[/]", f.certainty, f.format or "-", f.layer or "-", f.op or "-",
                      f.message, f.hint)
    console.print(table)
    for fmt, stats in report.stats.items():
        if stats.opset_known:
            console.print(f"{fmt}: {stats.ops_fallback} of {stats.ops_total} ops and {stats.fallback_fraction:.1%} of the "
                          f"estimated compute ({stats.compute_fallback:,} of {stats.compute_total:,} MACs/elements) "
                          "leave the accelerator")
        else:
            console.print(f"{fmt}: {stats.ops_total} ops; {report.target} states no op set for {fmt}, so none are flagged")
    verdict = "[red]hard limits broken[/]" if report.blocking else "[green]no hard limit broken[/]"
    console.print(f"{len(report.findings)} finding(s); {verdict}")


def print_targets(profiles: list[DeviceProfile]) -> None:
    table = Table(title="edgekit targets")
    for column in ("name", "class", "formats", "precision", "description"):
        table.add_column(column)
    for p in profiles:
        table.add_row(p.name, p.device_class, ", ".join(p.formats), p.precision, p.description)
    console.print(table)


def print_source(source: ModelSource) -> None:
    console.print(f"[bold]{source.framework}[/] model ({source.kind}) {source.path or ''}")
    if source.sha256:
        console.print(f"sha256 {source.sha256}  size {human_size(source.size_bytes or 0)}")
    for title, specs in (("inputs", source.inputs), ("outputs", source.outputs)):
        table = Table(title=title)
        for column in ("name", "shape", "dtype", "layout"):
            table.add_column(column)
        for spec in specs:
            table.add_row(spec.name, shape_text(spec.shape), spec.dtype, spec.layout)
        console.print(table)
