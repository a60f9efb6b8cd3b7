"""The Tune view's scatter: latency (median, with its 95% interval) against accuracy for every measured trial,
the Pareto front highlighted and joined, trials that miss a constraint greyed."""
from __future__ import annotations

from typing import Any

from edgekit.gui.plots import PlotCanvas
from matplotlib.lines import Line2D

FRONT, FEASIBLE, INFEASIBLE = "#2a9d4b", "#3b6fb6", "#b8b8b8"


class TunePlot(PlotCanvas):
    """Draws a ``TuneResult``; ``drawn`` counts the points shown, ``front_drawn`` the highlighted ones."""

    def __init__(self) -> None:
        self.front_drawn = 0
        super().__init__("Latency vs accuracy")
        self.show_empty("Run a tune to see its trials here")

    def show_empty(self, text: str) -> None:
        self.front_drawn = 0
        super().show_empty(text)

    def plot(self, result: Any) -> None:
        points = [r for r in result.trials
                  if r.state == "complete" and r.interval is not None and r.values.get("accuracy") is not None]
        if not points:
            self.show_empty("No trial measured yet")
            return
        front = {r.number for r in result.front}
        self.figure.clear()
        ax = self.figure.add_subplot()
        for r in points:
            on_front = r.number in front
            colour = FRONT if on_front else FEASIBLE if r.feasible else INFEASIBLE
            low, high = r.interval
            latency, accuracy = r.values["latency"], r.values["accuracy"] * 100
            ax.errorbar([latency], [accuracy], xerr=[[latency - low], [high - latency]], fmt="none", ecolor=colour,
                        elinewidth=1.2, capsize=2, alpha=0.8)
            ax.scatter([latency], [accuracy], s=90 if on_front else 40, color=colour, edgecolors="#1d1d1d" if on_front else
                       colour, linewidths=0.8, zorder=3, marker="o" if r.feasible else "X")
            ax.annotate(str(r.number), (latency, accuracy), fontsize=7, xytext=(5, 4), textcoords="offset points",
                        color="#333")
        line = sorted((r for r in points if r.number in front), key=lambda r: r.values["latency"])
        ax.plot([r.values["latency"] for r in line], [r.values["accuracy"] * 100 for r in line], color=FRONT,
                linestyle="--", linewidth=1, zorder=2)
        handles = [Line2D([], [], marker="o", linestyle="", color=FRONT, markeredgecolor="#1d1d1d", label="front"),
                   Line2D([], [], marker="o", linestyle="", color=FEASIBLE, label="meets the constraints"),
                   Line2D([], [], marker="X", linestyle="", color=INFEASIBLE, label="misses a constraint")]
        ax.legend(handles=handles, fontsize=8, loc="lower right")
        ax.set_xlabel("median latency (ms), bars: 95% interval")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{self.title}: {len(points)} measured, {len(line)} on the front", loc="left", fontsize=11)
        ax.grid(alpha=0.3)
        ax.margins(0.15)
        self.drawn, self.front_drawn = len(points), len(line)
        self.draw_idle()
