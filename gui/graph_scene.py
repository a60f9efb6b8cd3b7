"""The drawing of a model graph in Qt's graphics view: one box per node (placement stripe, fill by placement or
by the int8 error it adds, culprits outlined), Bézier edges as Graphviz routed them, zoom and click."""
from __future__ import annotations

import math
from typing import Any

from edgekit.gui.graph_layout import NODE_HEIGHT, NODE_WIDTH, POINTS, Layout
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

#: placement -> (fill, label in the legend)
PLACEMENT_COLOURS = {
    "accelerator": ("#bfe5c8", "on the accelerator (or the target CPU)"),
    "fallback": ("#ffd699", "CPU fallback"),
    "unsupported": ("#f2a7a2", "unsupported: runs nowhere"),
    "not_checked": ("#e1e3e6", "not checked: the target states no op set"),
    "io": ("#d3e2fa", "graph input / output"),
}
NO_TRACE = "#f4f4f4"
CULPRIT_PEN = "#7b1fa2"
W, H = NODE_WIDTH * POINTS, NODE_HEIGHT * POINTS


def error_colour(added: float, worst: float) -> QColor:
    """White to dark red on a log scale of the added error (1e-6 up to the graph's worst)."""
    low, high = math.log10(1e-6), math.log10(max(worst, 1e-5))
    share = 0.0 if added <= 1e-6 else min(1.0, (math.log10(added) - low) / (high - low))
    return QColor.fromHsvF(0.0, 0.08 + 0.8 * share, 1.0 - 0.35 * share)


class NodeItem(QGraphicsRectItem):
    """One node's box; ``node`` is its ``edgekit.ModelGraph`` node."""

    def __init__(self, node: Any, centre: tuple[float, float]) -> None:
        super().__init__(QRectF(centre[0] - W / 2, centre[1] - H / 2, W, H))
        self.node = node
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setToolTip(f"{node.name}\n{node.op}" + (f"\n{node.placement_reason}" if node.placement_reason else ""))
        self.stripe = QGraphicsRectItem(QRectF(centre[0] - W / 2, centre[1] - H / 2, 7, H), self)
        self.stripe.setPen(QPen(Qt.PenStyle.NoPen))
        self.stripe.setBrush(QColor(PLACEMENT_COLOURS[node.placement][0]).darker(135))
        title = self.title = QGraphicsSimpleTextItem(node.op if node.kind == "op" else f"{node.kind}: {node.name}"[:26], self)
        title.setFont(QFont("Sans", 7, QFont.Weight.DemiBold))
        title.setPos(centre[0] - W / 2 + 10, centre[1] - H / 2 + 2)
        self.sub = None
        if node.kind == "op":
            sub = self.sub = QGraphicsSimpleTextItem(short_name(node.name), self)
            sub.setFont(QFont("Sans", 6))
            sub.setBrush(QColor("#555"))
            sub.setPos(centre[0] - W / 2 + 10, centre[1] + 1)

    def paint_mode(self, mode: str, worst: float) -> QColor:
        """Fill for ``mode`` ('placement' or 'error'); culprits get a thick purple outline. Returns the fill."""
        node = self.node
        if mode == "error" and node.kind == "op":
            fill = QColor(NO_TRACE) if node.added_error is None else error_colour(node.added_error, worst)
        else:
            fill = QColor(PLACEMENT_COLOURS[node.placement][0])
        self.setBrush(fill)
        dark = fill.lightnessF() < 0.5
        self.title.setBrush(QColor("white" if dark else "black"))
        if self.sub is not None:
            self.sub.setBrush(QColor("#eeeeee" if dark else "#555555"))
        pen = QPen(QColor(CULPRIT_PEN), 3.0) if node.culprit else QPen(QColor("#7a7f87"), 0.8)
        if node.placement == "not_checked" and not node.culprit:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        return fill


def short_name(name: str, width: int = 28) -> str:
    """``name``, its end kept when it is longer than ``width`` characters."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


class GraphScene(QGraphicsScene):
    """The scene of one laid-out graph; ``items_by_id`` maps node ids to their boxes."""

    def __init__(self, graph: Any, layout: Layout, parent: Any = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.items_by_id: dict[str, NodeItem] = {}
        self.worst = max((n.added_error or 0.0 for n in graph.nodes), default=0.0)
        self.setSceneRect(QRectF(-20, -20, layout.width + 40, layout.height + 40))
        edge_pen = QPen(QColor("#9aa0a8"), 0.9)
        for _, _, points in layout.edges:
            if len(points) < 2:
                continue
            path = QPainterPath(QPointF(*points[0]))
            rest = points[1:]
            for i in range(0, len(rest) - 2, 3):
                path.cubicTo(QPointF(*rest[i]), QPointF(*rest[i + 1]), QPointF(*rest[i + 2]))
            edge = QGraphicsPathItem(path)
            edge.setPen(edge_pen)
            edge.setZValue(-1)
            self.addItem(edge)
        for node in graph.nodes:
            if node.id in layout.nodes:
                box = NodeItem(node, layout.nodes[node.id])
                self.items_by_id[node.id] = box
                self.addItem(box)
        self.set_mode("placement")

    def set_mode(self, mode: str) -> None:
        """Colour the nodes by placement or by the int8 error they add."""
        self.mode = mode
        for box in self.items_by_id.values():
            box.paint_mode(mode, self.worst)


class GraphCanvas(QGraphicsView):
    """Zoom with the wheel, drag to pan; ``node_clicked`` carries the id of the node clicked."""

    node_clicked = Signal(str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QBrush(QColor("#fbfbfc")))

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        factor = 1.2 if event.angleDelta().y() > 0 else 1 / 1.2
        self.scale(factor, factor)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        super().mouseReleaseEvent(event)
        item = self.itemAt(event.position().toPoint())
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        if isinstance(item, NodeItem):
            self.node_clicked.emit(item.node.id)

    def show_node(self, node_id: str) -> None:
        """Select and centre the node ``node_id``."""
        scene = self.scene()
        box = getattr(scene, "items_by_id", {}).get(node_id)
        if box is None:
            return
        scene.clearSelection()
        box.setSelected(True)
        if self.transform().m11() < 0.6:
            self.resetTransform()
        self.centerOn(box)
