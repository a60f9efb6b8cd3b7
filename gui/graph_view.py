"""The Graph view: the source model (ONNX) or any artifact of the build as a graph, nodes coloured by where they
run on the target and, after ``edgekit debug``, by the int8 error each layer adds; culprits outlined, a click
on a node shows its trace row (and a click on a trace row centres its node)."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from edgekit.gui.graph_layout import Layout
from edgekit.gui.graph_scene import CULPRIT_PEN, PLACEMENT_COLOURS, GraphCanvas, GraphScene, short_name
from edgekit.gui.jobs import GraphRequest
from edgekit.gui.runner import JobRunner
from edgekit.gui.widgets import ErrorPanel, JobStrip, PathPicker, heading, item, table
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

DATA_FILTER = "Data (*.npy *.npz);;All files (*)"
GRAPH_SUFFIXES = (".onnx", ".tflite", ".xml")


def legend_html() -> str:
    """The colour key: placements, the error scale and the culprit outline."""
    swatch = "<span style='background:{};border:1px solid #888'>&nbsp;&nbsp;&nbsp;&nbsp;</span> {}"
    parts = [swatch.format(colour, text) for colour, text in PLACEMENT_COLOURS.values()]
    parts.append("int8 error: <span style='background:#fff0f0'>&nbsp;low&nbsp;</span>"
                 "<span style='background:#a61b1b;color:white'>&nbsp;high&nbsp;</span> (log scale, added per layer)")
    parts.append(f"<span style='color:{CULPRIT_PEN};font-weight:700'>▢ culprit</span>")
    return " &nbsp; ".join(parts)


class GraphView(QWidget):
    """Pick a model file (the source ONNX model or an artifact of the build), see it placed on the target."""

    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graph: Any = None
        self.trace: Any = None
        self.target: str | None = None
        self.runner = JobRunner(self)
        self.file = QComboBox(minimumWidth=320)
        self.file.setToolTip("the source ONNX model or an artifact of the last build")
        self.target_label = QLabel("target: -")
        self.mode = QComboBox()
        self.mode.addItem("Colour by placement", "placement")
        self.mode.addItem("Colour by int8 error", "error")
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.open_button = QPushButton("Open file…")
        self.open_button.setToolTip("show the graph of another .onnx, .tflite or OpenVINO .xml file")
        self.open_button.clicked.connect(self._open_dialog)
        self.show_button = QPushButton("Show graph")
        self.show_button.clicked.connect(lambda: self.show_file(self.file.currentData() or ""))
        self.data = PathPicker("Evaluation data for edgekit debug", filter=DATA_FILTER,
                               placeholder="data for the int8 trace (.npy / .npz)")
        self.debug_button = QPushButton("Trace int8 error (edgekit debug)")
        self.debug_button.clicked.connect(self.debug)
        self.runner.running_changed.connect(self._running)

        self.error = ErrorPanel()
        self.job = JobStrip()
        self.job.cancel_requested.connect(self.runner.cancel)
        self.summary = QLabel("No graph yet: convert a model, or open an .onnx, .tflite or OpenVINO .xml file", wordWrap=True,
                              textFormat=Qt.TextFormat.PlainText)
        self.legend = QLabel(legend_html(), wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.canvas = GraphCanvas()
        self.canvas.node_clicked.connect(self.select_node)
        self.details = QLabel("Click a node", wordWrap=True, textFormat=Qt.TextFormat.RichText,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.trace_table = table(["#", "layer", "cosine", "added error"], stretch=1)
        self.trace_table.cellClicked.connect(self._trace_clicked)

        top = QHBoxLayout()
        for widget in (QLabel("Model"), self.file, self.open_button, self.show_button, self.target_label, self.mode):
            top.addWidget(widget)
        top.addStretch(1)
        debug_row = QHBoxLayout()
        debug_row.addWidget(self.data, 1)
        debug_row.addWidget(self.debug_button)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.details)
        side_layout.addWidget(QLabel("<b>int8 trace</b> — layers in execution order"))
        side_layout.addWidget(self.trace_table, 1)
        splitter = QSplitter()
        splitter.addWidget(self.canvas)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([760, 460])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading("Graph"))
        layout.addLayout(top)
        layout.addLayout(debug_row)
        layout.addWidget(self.job)
        layout.addWidget(self.error)
        layout.addWidget(self.summary)
        layout.addWidget(self.legend)
        layout.addWidget(splitter, 1)
        self.runner.progress.connect(self.job.update)
        self.runner.succeeded.connect(self._shown)
        self.runner.failed.connect(self._failed)
        self.runner.cancelled.connect(lambda message: self.job.finished("Cancelled"))

    # -- choosing what to show -------------------------------------------------------------------------

    def set_files(self, paths: list[str], target: str | None) -> None:
        """Offer ``paths`` (source model first, then the artifacts) for ``target``; graph-less files are left out."""
        self.target = target
        self.target_label.setText(f"target: {target or '-'}")
        self.file.clear()
        for path in paths:
            if path and Path(path).suffix.lower() in GRAPH_SUFFIXES:
                self.file.addItem(Path(path).name, path)

    def _open_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open a model graph", "", "Models (*.onnx *.tflite *.xml);;All files (*)")
        if path:
            self.file.addItem(Path(path).name, path)
            self.file.setCurrentIndex(self.file.count() - 1)
            self.show_file(path)

    def show_file(self, path: str, data: str = "") -> bool:
        """Read, place and lay out ``path`` in a job process (traced by ``edgekit debug`` on ``data`` when given)."""
        if not path:
            self.error.show_error("no model file to show", "convert a model first, or open an .onnx, .tflite or .xml file")
            return False
        self.error.clear()
        if not self.runner.start(GraphRequest(path=path, target=self.target, data=data)):
            return False
        self.job.started(("Tracing the int8 error of " if data else "Reading the graph of ") + Path(path).name + " …")
        return True

    def debug(self) -> bool:
        """Trace the chosen int8 artifact against its float reference on the chosen data."""
        if not self.data.path():
            self.error.show_error("the int8 trace needs evaluation data", "choose a .npy or .npz file with the model's inputs")
            return False
        return self.show_file(self.file.currentData() or "", data=self.data.path())

    def _running(self, running: bool) -> None:
        self.show_button.setEnabled(not running)
        self.debug_button.setEnabled(not running)

    # -- showing ---------------------------------------------------------------------------------------

    def _failed(self, message: str, hint: str) -> None:
        self.job.finished("Failed")
        self.error.show_error(message, hint)

    def _shown(self, data: dict[str, Any]) -> None:
        from edgekit import DivergenceReport, ModelGraph

        graph = ModelGraph.model_validate(data["graph"])
        trace = DivergenceReport.model_validate(data["trace"]) if data.get("trace") else None
        raw = data["layout"]
        placed = Layout(width=raw["width"], height=raw["height"], nodes={k: tuple(v) for k, v in raw["nodes"].items()},
                        edges=[(s, t, [tuple(p) for p in points]) for s, t, points in raw["edges"]])
        self.show_graph(graph, placed, trace)
        self.job.finished(f"{len(graph.ops())} ops, {len(graph.edges)} edges")

    def show_graph(self, graph: Any, placed: Layout, trace: Any = None) -> None:
        """Draw ``graph`` (an ``edgekit.ModelGraph``) at ``placed``; ``trace`` fills the trace table."""
        self.graph, self.trace = graph, trace
        self.scene = GraphScene(graph, placed, self)
        self.canvas.setScene(self.scene)
        self.mode.setCurrentIndex(1 if trace is not None else 0)
        self.scene.set_mode(self.mode.currentData())
        self.details.setText("Click a node")
        rect = self.scene.sceneRect()  # a tall graph: its top, as wide as the view, readable
        rect.setHeight(min(rect.height(), max(rect.width(), 700.0)))
        self.canvas.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.canvas.transform().m11() < 0.6:  # too wide to read whole: readable size, at the first input
            self.canvas.resetTransform()
            self.canvas.scale(0.8, 0.8)
            first = next((box for box in self.scene.items_by_id.values() if box.node.kind == "input"), None)
            if first is not None:
                self.canvas.centerOn(first)
        self.summary.setText(graph_summary(graph, trace))
        self.trace_table.setRowCount(0)
        culprits = {c.name for c in trace.culprits} | {c.key for c in trace.culprits} if trace else set()
        for layer in trace.layers if trace else ():
            row = self.trace_table.rowCount()
            self.trace_table.insertRow(row)
            state = "failed" if layer.name in culprits or layer.key in culprits else None
            for column, text in enumerate((str(layer.index), f"{layer.op_type} {short_name(layer.name, 40)}",
                                           f"{layer.cosine:.5f}", f"{layer.added_error:.2e}")):
                self.trace_table.setItem(row, column, item(text, state, align_right=column != 1, tooltip=layer.name))
        self.status_message.emit(f"graph of {Path(graph.path).name}: {len(graph.ops())} ops")

    def _mode_changed(self) -> None:
        if getattr(self, "scene", None) is not None:
            self.scene.set_mode(self.mode.currentData())

    def select_node(self, node_id: str) -> None:
        """Show the node's facts and select its row in the trace (the click-through)."""
        node = next((n for n in self.graph.nodes if n.id == node_id), None) if self.graph else None
        if node is None:
            return
        self.details.setText(node_details(node, self.trace))
        self.canvas.show_node(node_id)
        if node.trace_index is not None:
            for row in range(self.trace_table.rowCount()):
                if self.trace_table.item(row, 0).text() == str(node.trace_index):
                    self.trace_table.selectRow(row)
                    self.trace_table.scrollToItem(self.trace_table.item(row, 0))
                    break

    def _trace_clicked(self, row: int, _column: int) -> None:
        index = int(self.trace_table.item(row, 0).text())
        node = next((n for n in self.graph.nodes if n.trace_index == index), None)
        if node is not None:
            self.select_node(node.id)


def graph_summary(graph: Any, trace: Any) -> str:
    """One line: ops by placement on the target, what was not checked, the trace's output cosine and culprits."""
    counts = graph.placement_counts()
    names = {"accelerator": "on the accelerator", "fallback": "CPU fallback", "unsupported": "unsupported",
             "not_checked": "not checked"}
    placed = ", ".join(f"{counts[k]} {v}" for k, v in names.items() if counts.get(k))
    text = f"{Path(graph.path).name} ({graph.format}): {len(graph.ops())} ops"
    if graph.target:
        text += f" on {graph.target} as {graph.placement_format}: {placed}"
    if trace is not None:
        cosine = f"{trace.output_cosine:.4f}" if trace.output_cosine is not None else "-"
        culprits = [f"{n.op} {short_name(n.name)}" for n in graph.ops() if n.culprit]
        text += (f" · int8 trace on {trace.samples} samples: output cosine {cosine}, "
                 f"culprits (outlined): {', '.join(culprits) or 'none'}")
    return " ".join([text, *graph.notes])


def node_details(node: Any, trace: Any) -> str:
    """A node's facts as rich text: op, shape, placement and why, the error it adds, the culprit's remedies."""
    lines = [f"<b>{escape(node.name)}</b>", f"op {escape(node.op)}" + (f" · shape {list(node.shape)}" if node.shape else ""),
             f"<b>placement</b> {node.placement.replace('_', ' ')}"
             + (f": {escape(node.placement_reason)}" if node.placement_reason else "")]
    if node.added_error is not None:
        lines.append(f"<b>int8</b> cosine {node.cosine:.5f} · adds {node.added_error:.2e}")
    elif trace is not None and node.kind == "op":
        lines.append("not in the int8 trace (no float tensor of its own)")
    culprit = next((c for c in trace.culprits if node.name in (c.name, c.key) or c.key in node.outputs), None) if trace else None
    if culprit is not None:
        lines.append(f"<span style='color:{CULPRIT_PEN}'><b>culprit</b> ({culprit.share:.0%} of the added error): "
                     + escape("; ".join(culprit.reasons)) + "</span>")
        lines += [f"→ {escape(remedy[:160])}" for remedy in culprit.remedies]
    return "<br>".join(lines)
