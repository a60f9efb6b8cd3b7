"""A self-contained HTML report: per-layer error across the network, one chart per format side by side (inline SVG)."""
from __future__ import annotations

import html
import math
from pathlib import Path

from edgekit.atomic import atomic_write_text
from edgekit.divergence.report import DivergenceReport

_W, _H, _PAD = 420, 220, 36


def render(reports: list[DivergenceReport]) -> str:
    """The HTML page for ``reports`` (one column per artifact)."""
    columns = "".join(_column(report) for report in reports)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgekit int8 divergence</title><style>"
        "body{font-family:sans-serif;margin:16px}.grid{display:flex;gap:24px;flex-wrap:wrap}"
        ".col{flex:1;min-width:440px}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td.l{text-align:left}"
        ".bad{background:#fdd}</style></head><body><h1>Layer-by-layer divergence from the float reference</h1>"
        f"<div class='grid'>{columns}</div></body></html>"
    )


def write_html(reports: list[DivergenceReport], path: str | Path) -> Path:
    """Write the report page atomically; returns its path."""
    path = Path(path)
    atomic_write_text(path, render(reports))
    return path


def _column(report: DivergenceReport) -> str:
    culprit_names = {name for c in report.culprits for name in c.keep_float[:1]}
    rows = "".join(
        f"<tr class='{'bad' if layer.name in culprit_names else ''}'><td>{layer.index}</td>"
        f"<td class='l'>{html.escape(layer.name[-60:])}</td><td class='l'>{html.escape(layer.op_type)}</td>"
        f"<td>{layer.cosine:.5f}</td><td>{layer.added_error:.2e}</td></tr>"
        for layer in report.layers
    )
    culprits = "".join(
        f"<li><b>{html.escape(c.name)}</b>: {html.escape('; '.join(c.reasons))}"
        f"<br><i>{html.escape('; '.join(c.remedies))}</i></li>"
        for c in report.culprits
    )
    cosine = "n/a" if report.output_cosine is None else f"{report.output_cosine:.5f}"
    return (
        f"<div class='col'><h2>{html.escape(report.format)} {html.escape(report.precision)}</h2>"
        f"<p>{html.escape(Path(report.artifact).name)}: output cosine {cosine}, {report.samples} samples"
        f"{' (partial)' if report.partial else ''}</p>{_chart(report)}<ol>{culprits}</ol>"
        f"<table><tr><th>#</th><th>layer</th><th>op</th><th>cosine</th><th>added</th></tr>{rows}</table></div>"
    )


def _chart(report: DivergenceReport) -> str:
    """Error (1 - cosine, log scale) per layer as a line, added error as bars."""
    layers = report.layers
    if not layers:
        return ""
    floor = 1e-7
    values = [max(lay.error, floor) for lay in layers] + [max(lay.added_error, floor) for lay in layers]
    top = math.log10(max(values)) + 0.2
    bottom = min(math.log10(floor), top - 1)
    step = (_W - 2 * _PAD) / max(len(layers) - 1, 1)

    def y(value: float) -> float:
        return _H - _PAD - (math.log10(max(value, floor)) - bottom) / (top - bottom) * (_H - 2 * _PAD)

    bars = "".join(
        f"<rect x='{_PAD + i * step - 3:.1f}' y='{y(lay.added_error):.1f}' width='6' "
        f"height='{_H - _PAD - y(lay.added_error):.1f}' "
        f"fill='#e88'><title>{html.escape(lay.name)}: added {lay.added_error:.2e}</title></rect>"
        for i, lay in enumerate(layers)
    )
    points = " ".join(f"{_PAD + i * step:.1f},{y(lay.error):.1f}" for i, lay in enumerate(layers))
    ticks = "".join(
        f"<text x='2' y='{y(10.0 ** e) + 4:.1f}' font-size='10'>1e{e}</text>"
        for e in range(math.ceil(bottom), math.floor(top) + 1)
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' role='img'>"
        f"<rect width='{_W}' height='{_H}' fill='white' stroke='#ccc'/>{ticks}{bars}"
        f"<polyline points='{points}' fill='none' stroke='#36c' stroke-width='2'/>"
        f"<text x='{_PAD}' y='14' font-size='11'>error (1 - cosine, line) and added error (bars) per layer</text></svg>"
    )
