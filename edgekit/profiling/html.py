"""A self-contained HTML report: tables and inline SVG plots, no script, no network."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgekit.profiling.report import ArtifactProfile, ProfileReport

WIDTH, HEIGHT, PAD = 560, 220, 40
STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.partial{color:#b60}.failed{color:#c00}svg{background:#fafafa;border:1px solid #ddd;margin:4px}
text{font-size:11px;fill:#333}figure{display:inline-block;margin:0.5em 1em 0.5em 0}
figcaption{font-weight:600;font-size:13px;margin:0 0 2px 4px}"""


def chart(title: str, svg: str) -> str:
    """An SVG chart with its title above it (nothing for an empty chart)."""
    return f"<figure><figcaption>{escape(title)}</figcaption>{svg}</figure>" if svg else ""


def _label(r: ArtifactProfile) -> str:
    return f"{r.format} {r.precision or ''}".strip() + f" · {r.artifact.rsplit('/', 1)[-1]}"


def histogram_svg(latencies_ms: tuple[float, ...] | list[float], bins: int = 30) -> str:
    """Latency histogram (the slowest 1% folded into the last bar so the shape stays visible)."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    high = float(np.percentile(values, 99)) if len(values) > 1 else float(values.max())
    low = float(values.min())
    counts, edges = np.histogram(np.clip(values, low, high), bins=bins, range=(low, high if high > low else low + 1e-9))
    bar_w = (WIDTH - 2 * PAD) / bins
    top = counts.max() or 1
    bars = "".join(
        f'<rect x="{PAD + i * bar_w:.1f}" y="{HEIGHT - PAD - c / top * (HEIGHT - 2 * PAD):.1f}" width="{bar_w - 1:.1f}" '
        f'height="{c / top * (HEIGHT - 2 * PAD):.1f}" fill="#4a7ebb">'
        f'<title>{edges[i]:.4f}–{edges[i + 1]:.4f} ms: {c}</title></rect>'
        for i, c in enumerate(counts))
    median = float(np.median(values))
    mx = PAD + (median - low) / ((high - low) or 1) * (WIDTH - 2 * PAD)
    return (f'<svg width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">{bars}'
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{PAD / 2}" y2="{HEIGHT - PAD}" stroke="#c33" stroke-dasharray="4"/>'
            f'<text x="{mx + 3:.1f}" y="{PAD / 2 + 10}">median {median:.4f} ms</text>'
            f'<text x="{PAD}" y="{HEIGHT - PAD / 3}">{low:.4f} ms</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD / 3}" text-anchor="end">{high:.4f} ms (p99)</text></svg>')


def bars_svg(rows: list[tuple[str, float]], unit: str, top_n: int = 15) -> str:
    """Horizontal bars, largest first (per-op breakdown, or one metric across artifacts)."""
    rows = sorted(rows, key=lambda r: r[1], reverse=True)[:top_n]
    if not rows:
        return ""
    row_h, label_w = 18, 260
    height = row_h * len(rows) + 10
    top = max(v for _, v in rows) or 1.0
    parts = []
    for i, (name, value) in enumerate(rows):
        y = 5 + i * row_h
        w = value / top * (WIDTH - label_w - 80)
        parts.append(f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end">{escape(name[:40])}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="#6a9f58"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{value:.4g} {unit}</text>')
    return f'<svg width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def accuracy_text(acc) -> str:
    """Accuracy with its exact 95% binomial (Clopper-Pearson) interval and the sample count."""
    from edgekit.verdict import proportion_interval

    low, high = proportion_interval(round(acc.accuracy * acc.samples), acc.samples)
    return f"{acc.accuracy:.2%} [{low:.1%}–{high:.1%}] n={acc.samples}"


def _summary_table(report: ProfileReport) -> str:
    head = ("artifact", "runtime / device", "status", "median ms", "95% CI", "p90", "p99", "mean", "std", "min", "max",
            "runs", "load ms", "first ms", "peak RSS MB", "size KB", "accuracy (95% CI)", "parity cos")
    rows = []
    for r in report.results:
        acc = r.accuracy
        cells = (_label(r), f"{r.runtime or '-'} / {r.accelerator or '-'}", f'<span class="{r.status}">{r.status}</span>',
                 _f(r.median_ms), f"{_f(r.median_ci_low_ms)}–{_f(r.median_ci_high_ms)}", _f(r.p90_ms), _f(r.p99_ms),
                 _f(r.mean_ms), _f(r.std_ms), _f(r.min_ms), _f(r.max_ms), str(r.runs), _f(r.load_ms), _f(r.first_inference_ms),
                 f"{r.peak_rss_bytes / 2**20:.1f}" if r.peak_rss_bytes else "-", f"{r.size_bytes / 1024:.1f}",
                 accuracy_text(acc) if acc else "-", f"{acc.parity.cosine:.5f}" if acc and acc.parity else "-")
        rows.append("<tr>" + "".join(f"<td>{c if c.startswith('<span') else escape(c)}</td>" for c in cells) + "</tr>")
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def _device_sections(report: ProfileReport, level: int = 1) -> list[str]:
    done = [r for r in report.results if r.median_ms is not None]
    h, sub_h = f"h{level}", f"h{level + 1}"
    sections = [f"<{h}>edgekit profile · {escape(report.device)}</{h}>",
                f"<p>{escape(report.created)} · edgekit {escape(report.edgekit_version)} · "
                + (f"{escape(report.host.hostname)}: {escape(report.host.cpu)}, {report.host.cpu_count} cores · "
                   if report.host else "")
                + f"threads {report.settings.threads} · warm-up {report.settings.warmup_runs} · at least "
                f"{report.settings.min_runs} runs and {report.settings.min_seconds:g} s</p>",
                _summary_table(report)]
    if len(done) > 1:
        sections.append(f"<{sub_h}>Across artifacts</{sub_h}>")
        sections.append(chart("Median latency per artifact (ms)", bars_svg([(_label(r), r.median_ms) for r in done], "ms")))
        sizes = [(_label(r), r.size_bytes / 1024) for r in report.results]
        sections.append(chart("Size per artifact (KB)", bars_svg(sizes, "KB")))
        accurate = [(_label(r), 100 * r.accuracy.accuracy) for r in report.results if r.accuracy]
        if accurate:
            sections.append(chart("Top-1 accuracy per artifact (%)", bars_svg(accurate, "%")))
    for r in report.results:
        sections.append(f"<{sub_h}>{escape(_label(r))}</{sub_h}>")
        if r.error:
            hint = f"<br>hint: {escape(r.hint)}" if r.hint else ""
            sections.append(f'<p class="{r.status}">{escape(r.error)}{hint}</p>')
        if r.latencies_ms:
            title = f"Latency distribution: {_label(r)} ({len(r.latencies_ms)} runs)"
            sections.append(chart(title, histogram_svg(r.latencies_ms)))
        if r.ops:
            sections.append(chart(f"Slowest operations: {_label(r)} (mean ms per inference)",
                                  bars_svg([(f"{o.name} ({o.type})", o.ms) for o in r.ops], "ms")))
        elif r.ops_note:
            sections.append(f"<p>per-op times: {escape(r.ops_note)}</p>")
    return sections


def _page(title: str, sections: list[str]) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style>'
            f'</head><body>{"".join(sections)}</body></html>\n')


def render(report: ProfileReport) -> str:
    """The whole report as one HTML page."""
    return _page(f"edgekit profile · {report.device}", _device_sections(report))


def render_combined(reports: list[ProfileReport]) -> str:
    """Several devices' reports as one page: every result across devices first, then each device's report."""
    rows = [(f"{_label(r)} · {report.device}", r) for report in reports for r in report.results]
    done = [(name, r) for name, r in rows if r.median_ms is not None]
    sections = [f"<h1>edgekit profile · {len(reports)} devices</h1>",
                f"<p>{escape(', '.join(report.device for report in reports))}</p>"]
    if done:
        sections.append(chart("Median latency across devices (ms)", bars_svg([(n, r.median_ms) for n, r in done], "ms", 40)))
        accurate = [(n, 100 * r.accuracy.accuracy) for n, r in rows if r.accuracy]
        if accurate:
            sections.append(chart("Top-1 accuracy across devices (%)", bars_svg(accurate, "%", 40)))
    for report in reports:
        sections.extend(_device_sections(report, level=2))
    return _page("edgekit profile · devices", sections)


def save_combined_html(reports: list[ProfileReport], path: str | Path) -> Path:
    """Write :func:`render_combined` of ``reports`` to ``path`` (atomically); return the path."""
    from edgekit.atomic import atomic_write_text

    path = Path(path)
    atomic_write_text(path, render_combined(list(reports)))
    return path
