"""The result of a tune run: every trial, the Pareto front, written as tune.json and tune-report.html."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from edgekit.atomic import atomic_write_text
from edgekit.errors import InvalidOptionError
from edgekit.tune.front import TrialRecord, fastest, pareto_front, summary_row
from edgekit.tune.space import SearchSpace
from edgekit.tune.tasks import RescueCurve

SCHEMA = "edgekit.tune/1"
JSON_NAME = "tune.json"
HTML_NAME = "tune-report.html"


def tune_folder(output_dir: str | Path) -> Path:
    """Where a tune run keeps its study, cached builds and reports: ``<output_dir>.tune`` beside the build folder."""
    out = Path(output_dir).resolve()
    return out.parent / f"{out.name}.tune"


class TuneResult(BaseModel):
    """Every trial of a study (this run's and earlier runs'), its front and where it is stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: str = SCHEMA
    model: str
    target: str
    objectives: tuple[str, ...]
    constraints: dict[str, float]
    seed: int
    batch: int = 4  # trials asked and told together
    study: str  # the SQLite file
    folder: str  # the tune folder (study, cached builds, reports)
    output_dir: str  # where --select promotes a point
    space: SearchSpace
    space_size: int
    devices: tuple[str, ...]
    lost_devices: dict[str, str] = {}
    trials: tuple[TrialRecord, ...]
    notes: tuple[str, ...] = ()
    rescue: dict[str, RescueCurve] = {}  # per format: the int8 rescue curve its float-layer sets came from

    @property
    def front(self) -> list[TrialRecord]:
        """The feasible trials no other dominates (latency intervals that overlap are not ranked)."""
        return pareto_front(list(self.trials), self.objectives)

    @classmethod
    def load(cls, output_dir: str | Path) -> TuneResult:
        """The study beside the build folder ``output_dir`` as its last run left it (its ``tune.json``)."""
        path = tune_folder(output_dir) / JSON_NAME
        if not path.is_file():
            raise InvalidOptionError(f"no tune run beside {output_dir} ({path} does not exist)",
                                     "run edgekit tune with the same --out first")
        document = json.loads(path.read_text(encoding="utf-8"))
        for key in ("summary", "front"):
            document.pop(key, None)
        return cls.model_validate(document)

    def trial(self, number: int) -> TrialRecord:
        for record in self.trials:
            if record.number == number:
                return record
        raise KeyError(number)

    def summary(self) -> dict[str, Any]:
        front = self.front
        best, tied = fastest(list(self.trials))
        return {
            "trials": len(self.trials), "complete": sum(r.state == "complete" for r in self.trials),
            "failed": sum(r.state == "failed" for r in self.trials), "feasible": sum(r.feasible for r in self.trials),
            "duplicates": sum(r.state == "duplicate" for r in self.trials),
            "front": [r.number for r in front], "fastest": best.number if best else None,
            "fastest_tied_with": [r.number for r in tied],
        }

    def save_json(self, path: str | Path) -> Path:
        document = {**self.model_dump(mode="json"), "summary": self.summary(), "front": [r.number for r in self.front]}
        atomic_write_text(Path(path), json.dumps(document, indent=2) + "\n")
        return Path(path)

    def save_html(self, path: str | Path) -> Path:
        atomic_write_text(Path(path), render(self))
        return Path(path)


def render(result: TuneResult) -> str:
    """A self-contained page: the latency-vs-accuracy scatter with the front and each point's interval, and tables."""
    front = {r.number for r in result.front}
    summary = result.summary()
    rows = "".join(_row(summary_row(r), r.number in front) for r in result.trials)
    constraints = ", ".join(f"{k}={v:g}" for k, v in result.constraints.items()) or "none"
    lost = "".join(f"<li>{html.escape(d)}: {html.escape(w)}</li>" for d, w in result.lost_devices.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    name = html.escape(Path(result.model).name)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>edgekit tune: {name}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}}td.l,th.l{{text-align:left}}tr.front{{background:#eef6ee}}
.fail{{color:#a33}}</style></head><body>
<h1>edgekit tune: {name} on {html.escape(result.target)}</h1>
<p>{summary['trials']} trials ({summary['complete']} complete, {summary['failed']} failed, {summary['feasible']} meet the
constraints) of a space of {result.space_size} configurations; objectives {', '.join(result.objectives)};
constraints {html.escape(constraints)}; seed {result.seed}; devices {html.escape(', '.join(result.devices))}.
Latency is the median of the timed runs with its 95% interval; two points whose intervals (each widened to at
least a quarter octave, the spread between runs on a shared machine) overlap are not ranked against each other on
latency.</p>
{_chart(result, front)}
<h2>Trials</h2><table><tr><th>trial</th><th class="l">configuration</th><th class="l">state</th><th>latency ms</th>
<th>95% interval</th><th>accuracy</th><th>size</th><th class="l">reason / constraints</th></tr>{rows}</table>
{_curves(result)}{f'<h2>Devices lost</h2><ul>{lost}</ul>' if lost else ''}{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
</body></html>
"""


def _curves(result: TuneResult) -> str:
    """Each rescue curve the float-layer sets came from: one row per accepted step."""
    if not result.rescue:
        return ""

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:.6g}"

    rows = "".join(
        f'<tr><td class="l">{html.escape(fmt)}</td><td>{step}</td>'
        f'<td class="l">{html.escape(", ".join(p.remedies) or "plain int8")}</td>'
        f'<td class="l">{html.escape(", ".join(p.float_layers) or "none")}</td><td>{cell(p.cosine)}</td>'
        f"<td>{cell(p.top1_agreement)}</td><td>{cell(p.int8_compute_share)}</td></tr>"
        for fmt, curve in result.rescue.items() for step, p in enumerate(curve.points))
    return ('<h2>Float-layer sets from the int8 rescue</h2><table><tr><th class="l">format</th><th>step</th>'
            '<th class="l">remedies</th><th class="l">in float</th><th>cosine</th><th>top-1</th><th>int8 share</th></tr>'
            f"{rows}</table>")


def _row(row: dict[str, Any], on_front: bool) -> str:
    interval = row["interval"]
    latency = f"{row['latency_ms']:.3f}" if row["latency_ms"] is not None else ""
    span = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
    accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else ""
    size = f"{row['size_bytes']:,}" if row["size_bytes"] is not None else ""
    why = html.escape(row["reason"] or "; ".join(row["violations"]))
    state = f'<td class="l{" fail" if row["state"] != "complete" else ""}">{row["state"]}{" (front)" if on_front else ""}</td>'
    return (f'<tr class="{"front" if on_front else ""}"><td>{row["trial"]}</td><td class="l">{html.escape(row["config"])}</td>'
            f"{state}<td>{latency}</td><td>{span}</td><td>{accuracy}</td><td>{size}</td><td class=\"l\">{why}</td></tr>")


def _chart(result: TuneResult, front: set[int]) -> str:
    """Latency (x, with interval bars) against accuracy (y); the front in green and joined, infeasible in grey."""
    points = [r for r in result.trials
              if r.state == "complete" and r.interval is not None and r.values.get("accuracy") is not None]
    if not points:
        return "<p>No trial was measured yet.</p>"
    width, height, pad = 720, 360, 50
    xs = [v for r in points for v in r.interval]  # type: ignore[union-attr]
    ys = [r.values["accuracy"] for r in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 0.01)

    def sx(v: float) -> float:
        return pad + (v - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)

    marks = []
    for r in points:
        low, high = r.interval  # type: ignore[misc]
        color = "#2a7" if r.number in front else "#48c" if r.feasible else "#bbb"
        x, y = sx(r.values["latency"]), sy(r.values["accuracy"])
        marks.append(f'<line x1="{sx(low):.1f}" x2="{sx(high):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}"/>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if r.number in front else 4}" fill="{color}">'
                     f"<title>trial {r.number}: {html.escape(r.config.label())}</title></circle>")
    line = sorted((r for r in points if r.number in front), key=lambda r: r.values["latency"])
    path = " ".join(f"{sx(r.values['latency']):.1f},{sy(r.values['accuracy']):.1f}" for r in line)
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" role="img">'
            f'<rect width="{width}" height="{height}" fill="#fff" stroke="#ccc"/>'
            f'<polyline points="{path}" fill="none" stroke="#2a7" stroke-dasharray="4 3"/>{"".join(marks)}'
            f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">latency, median ms ({x0:.3g} .. {x1:.3g})</text>'
            f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">'
            f"accuracy ({y0:.4g} .. {y1:.4g})</text></svg>"
            "<p>Green: the front (joined); blue: feasible; grey: misses a constraint. Bars: 95% latency intervals.</p>")
