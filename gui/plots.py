"""Profiling plots drawn with matplotlib inside Qt: latency distribution, per-op breakdown, and the
accuracy / latency / size comparison across artifacts and devices.

Each plot takes ``ArtifactProfile`` objects (from ``edgekit.profile``'s report) and only draws them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

PALETTE = ("#3b6fb6", "#d9822b", "#3f9b5a", "#b4463c", "#7a5fb0", "#8c6d3f", "#c45a9f", "#5f6b7a")
MARKERS = ("o", "s", "^", "D", "v", "P")
TOP_OPS = 12


def label(result: Any) -> str:
    """How one measured artifact is named in plots and tables: format, precision, device."""
    return f"{result.format} {result.precision or ''} · {result.device.removeprefix('local:')}".replace("  ", " ")


class PlotCanvas(FigureCanvasQTAgg):
    """A matplotlib figure in a Qt widget; ``drawn`` counts what the last draw showed (for tests)."""

    def __init__(self, title: str, empty: str = "Run a profile to see this plot") -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtGui import QAction

        self.figure = Figure(figsize=(6, 3.6), layout="constrained")
        super().__init__(self.figure)
        self.title = title
        self.drawn = 0
        self.save_action = QAction("Save as PNG…", self)
        self.save_action.triggered.connect(self.save_dialog)
        self.addAction(self.save_action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.setToolTip("Right-click to save this plot as PNG")
        self.show_empty(empty)

    def show_empty(self, text: str) -> None:
        self.figure.clear()
        ax = self.figure.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", color="#777", fontsize=11, transform=ax.transAxes)
        self.drawn = 0
        self.draw_idle()

    def save(self, path: str | Path) -> Path:
        """Write the plot as it is shown to a PNG file (150 dpi); return the path."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        self.figure.savefig(path, dpi=150, format="png")
        return path

    def save_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        name = self.title.lower().replace(" ", "-").replace("·", "").replace("--", "-")
        path, _ = QFileDialog.getSaveFileName(self, "Save plot as PNG", f"{name}.png", "PNG images (*.png)")
        if path:
            self.save(path)


class LatencyPlot(PlotCanvas):
    """The distribution of timed runs per artifact and device (box plot with the runs scattered over it)."""

    def __init__(self) -> None:
        super().__init__("Latency distribution")
        self.log_scale = False

    def plot(self, results: Sequence[Any]) -> None:
        measured = [r for r in results if r.latencies_ms]
        if not measured:
            self.show_empty("No timed runs in these results")
            return
        self.figure.clear()
        ax = self.figure.add_subplot()
        data = [np.asarray(r.latencies_ms) for r in measured]
        ax.boxplot(data, orientation="horizontal", showfliers=False, widths=0.55, medianprops={"color": "#222"},
                   tick_labels=[label(r) for r in measured])
        rng = np.random.default_rng(0)
        for i, values in enumerate(data, start=1):
            high = np.percentile(values, 99)
            shown = values[values <= high]
            ax.scatter(shown, i + rng.uniform(-0.18, 0.18, len(shown)), s=6, alpha=0.35, color=PALETTE[(i - 1) % len(PALETTE)])
        if self.log_scale:
            ax.set_xscale("log")
        ax.set_xlabel("latency per inference (ms" + (", log scale" if self.log_scale else "") + "); runs above p99 not drawn")
        ax.set_title(self.title, loc="left", fontsize=11)
        ax.grid(axis="x", alpha=0.3)
        self.drawn = len(measured)
        self.draw_idle()


class OpsPlot(PlotCanvas):
    """The slowest operations of one measured artifact, mean ms per inference."""

    def __init__(self) -> None:
        super().__init__("Per-op breakdown")

    def plot(self, result: Any | None) -> None:
        if result is None or not result.ops:
            self.show_empty(result.ops_note if result is not None and result.ops_note else "No per-op profile for this result")
            return
        self.figure.clear()
        ax = self.figure.add_subplot()
        ops = sorted(result.ops, key=lambda o: o.ms, reverse=True)[:TOP_OPS][::-1]
        names = [f"{o.name[:32]} ({o.type})" for o in ops]
        bars = ax.barh(names, [o.ms for o in ops], color=PALETTE[2])
        for bar, op in zip(bars, ops):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {op.share:.0%}", va="center", fontsize=8)
        ax.set_xlabel("mean ms per inference")
        ax.set_title(f"{self.title}: {label(result)}", loc="left", fontsize=11)
        ax.tick_params(axis="y", labelsize=8)
        ax.margins(x=0.12)
        self.drawn = len(ops)
        self.draw_idle()


class ComparisonPlot(PlotCanvas):
    """Median latency against accuracy (or, without a dataset, size): bubble area by size, colour by format,
    marker by device."""

    def __init__(self) -> None:
        super().__init__("Accuracy vs latency vs size")
        self.log_scale = False

    def plot(self, results: Sequence[Any]) -> None:
        measured = [r for r in results if r.median_ms is not None]
        if not measured:
            self.show_empty("No finished measurements to compare")
            return
        with_accuracy = all(r.accuracy is not None for r in measured)
        self.figure.clear()
        ax = self.figure.add_subplot()
        devices = list(dict.fromkeys(r.device for r in measured))
        formats = list(dict.fromkeys(r.format for r in measured))
        sizes = np.array([r.size_bytes for r in measured], dtype=float)
        area = 80 + 900 * sizes / sizes.max()
        for i, r in enumerate(measured):
            y = r.accuracy.accuracy * 100 if with_accuracy else r.size_bytes / 1024
            device = devices.index(r.device)
            ax.scatter([r.median_ms], [y], s=area[i], alpha=0.55, color=PALETTE[formats.index(r.format) % len(PALETTE)],
                       marker=MARKERS[device % len(MARKERS)], edgecolors="#333", linewidths=0.6)
            # neighbours' labels on alternate sides, and each says its device when there are several
            text = " ".join(filter(None, (r.format, r.precision))) + (
                f" · {r.device.removeprefix('local:')}" if len(devices) > 1 else "")
            ax.annotate(f"{text}\n{r.size_bytes / 1024:.0f} KB", (r.median_ms, y), fontsize=8,
                        xytext=(10, 4) if (i + device) % 2 == 0 else (-10, -16),
                        ha="left" if (i + device) % 2 == 0 else "right",
                        textcoords="offset points", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                          "alpha": 0.7})
        handles = [Line2D([], [], marker="o", linestyle="", color=PALETTE[i % len(PALETTE)], label=f)
                   for i, f in enumerate(formats)]
        handles += [Line2D([], [], marker=MARKERS[i % len(MARKERS)], linestyle="", color="#555", label=d)
                    for i, d in enumerate(devices)]
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="format · device")
        ax.set_xlabel("median latency (ms" + (", log scale" if self.log_scale else "") + ")")
        ax.set_ylabel("accuracy (%)" if with_accuracy else "size (KB)")
        ax.set_title(self.title + ("" if with_accuracy else " (no dataset: size on the y axis)"), loc="left", fontsize=11)
        ax.grid(alpha=0.3)
        ax.margins(0.25)
        if self.log_scale:
            ax.set_xscale("log")
        else:
            ax.set_xlim(left=0)
        self.drawn = len(measured)
        self.draw_idle()
