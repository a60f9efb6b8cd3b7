"""Rich tables for a divergence report."""
from __future__ import annotations

from edgekit.divergence.report import DivergenceReport


def print_report(report: DivergenceReport, *, worst: int = 25) -> None:
    """The layers (the ``worst`` by added error when there are more, in network order) and the culprits."""
    from rich.table import Table

    from edgekit.console import console
    title = (f"{report.format} {report.precision} vs float reference: output cosine "
             f"{_fmt(report.output_cosine)}, top-1 agreement {_fmt(report.top1_agreement, 3)} ({report.samples} samples)")
    table = Table(title=title, title_justify="left")
    for column in ("#", "layer", "op", "cosine", "rel. err", "added", "inherited", "scale / zp", "calib. range", "eval range"):
        table.add_column(column, justify="right" if column not in ("layer", "op") else "left")
    shown = sorted(report.layers, key=lambda lay: lay.added_error, reverse=True)[:worst]
    for layer in sorted(shown, key=lambda lay: lay.index):
        quant = f"{layer.scale:.3g} / {layer.zero_point}" if layer.scale else "float"
        table.add_row(
            str(layer.index), _short(layer.name), layer.op_type, f"{layer.cosine:.5f}", f"{layer.relative_error:.3g}",
            f"{layer.added_error:.2e}", f"{layer.inherited_error:.2e}", quant, _range(layer.calibration_range),
            _range(layer.evaluation_range),
        )
    console.print(table)
    if report.coverage and report.coverage[0].coverage < 1.0:
        from edgekit.data_console import print_coverage

        print_coverage(report.coverage[:5], "layers whose calibration range covers least of the evaluation data's range")
    if not report.culprits:
        console.print("no layer stands out: the error is spread evenly (or there is none)")
    for rank, culprit in enumerate(report.culprits, 1):
        console.print(f"[bold]{rank}. {culprit.name}[/bold] ({culprit.op_type}, {100 * culprit.share:.0f}% of the added error)")
        for reason in culprit.reasons:
            console.print(f"   why: {reason}")
        for remedy in culprit.remedies:
            console.print(f"   fix: {remedy}")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if report.partial:
        console.print("[yellow]partial report:[/yellow] some layers could not be compared (see the notes)")


def _fmt(value: float | None, digits: int = 5) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _range(bounds: tuple[float, float] | None) -> str:
    return "n/a" if bounds is None else f"[{bounds[0]:.3g}, {bounds[1]:.3g}]"


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]
