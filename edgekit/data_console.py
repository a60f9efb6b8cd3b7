"""Rich tables of a data report (``edgekit data``)."""
from __future__ import annotations

from rich.table import Table

from edgekit.console import console
from edgekit.data_checks import DataReport, LayerCoverage


def print_data_report(report: DataReport, coverage_rows: int = 8) -> None:
    table = Table(title=f"calibration data: {report.samples} samples ({report.exact_duplicates} exact, "
                        f"{report.near_duplicates} near duplicates)")
    for column in ("input", "shape", "dtype", "min", "max", "mean", "NaN/Inf", "expected"):
        table.add_column(column, justify="left" if column in ("input", "shape", "dtype", "expected") else "right")
    for s in report.inputs:
        expected = f"[{s.expected_range[0]:.3g}, {s.expected_range[1]:.3g}] ({s.expected_from})" if s.expected_range else "-"
        table.add_row(s.name, str(s.shape), s.dtype, f"{s.minimum:.4g}", f"{s.maximum:.4g}", f"{s.mean:.4g}",
                      str(s.non_finite_samples), expected)
    console.print(table)
    if report.class_histogram:
        total = sum(report.class_histogram.values())
        shares = ", ".join(f"{k}: {v / total:.0%}" for k, v in sorted(report.class_histogram.items(), key=lambda kv: -kv[1]))
        console.print(f"reference model's predicted classes: {shares}")
    if report.coverage:
        print_coverage(report.coverage[:coverage_rows], f"activation-range coverage of {report.validation_samples} "
                                                       "validation samples (worst layers)")
    for finding in report.findings:
        colour = "yellow" if finding.level == "warning" else "dim"
        console.print(f"[{colour}]{finding.level}[/]: {finding.message}" + (f"\n  hint: {finding.hint}" if finding.hint else ""))
    if not report.warnings:
        console.print("[green]no problem found[/]")


def print_coverage(rows: list[LayerCoverage], title: str) -> None:
    table = Table(title=title)
    for column in ("layer", "calibration range", "validation range", "covered", "clipped"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for r in rows:
        colour = "red" if r.coverage < 0.9 else "green"
        table.add_row(r.layer, f"[{r.calibration_range[0]:.3g}, {r.calibration_range[1]:.3g}]",
                      f"[{r.validation_range[0]:.3g}, {r.validation_range[1]:.3g}]", f"[{colour}]{r.coverage:.0%}[/]",
                      f"{r.clipped:.2%}")
    console.print(table)
