"""Layered layout of a model graph with Graphviz's ``dot`` (through the ``graphviz`` package); no Qt here.

``layout(graph)`` returns each node's centre and each edge's spline in scene coordinates (points, y down).
Graphviz is a system program: when ``dot`` is missing the error says how to install it.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import EdgekitError

NODE_WIDTH, NODE_HEIGHT = 1.6, 0.42  # inches, as dot takes them (72 points each)
POINTS = 72.0
INSTALL_HINT = ("install Graphviz: sudo apt-get install graphviz (Debian/Ubuntu), sudo dnf install graphviz (Fedora), "
                "brew install graphviz (macOS), or from graphviz.org; then reopen the graph")


@dataclass
class Layout:
    """Node centres and edge control points (cubic Bézier, as dot routes them) in points, y growing down."""

    width: float
    height: float
    nodes: dict[str, tuple[float, float]] = field(default_factory=dict)
    edges: list[tuple[str, str, list[tuple[float, float]]]] = field(default_factory=list)


def dot_source(graph: Any) -> str:
    """The DOT text of ``graph`` (an ``edgekit.ModelGraph``): fixed-size boxes, top to bottom."""
    import graphviz

    dot = graphviz.Digraph(graph_attr={"rankdir": "TB", "nodesep": "0.25", "ranksep": "0.35", "splines": "spline"},
                           node_attr={"shape": "box", "fixedsize": "true", "width": str(NODE_WIDTH),
                                      "height": str(NODE_HEIGHT), "label": ""})
    index = {node.id: f"v{i}" for i, node in enumerate(graph.nodes)}  # ids may hold ':' (a port in DOT)
    for node in graph.nodes:
        dot.node(index[node.id])
    for edge in graph.edges:
        dot.edge(index[edge.source], index[edge.target])
    return dot.source


def layout(graph: Any) -> Layout:
    """Lay ``graph`` out with ``dot``; an ``EdgekitError`` with the install line when Graphviz is missing."""
    try:
        import graphviz
    except ImportError:
        raise EdgekitError("the graph view needs the graphviz package", 'pip install "edgekit[gui]"') from None
    try:
        raw = graphviz.pipe("dot", "json0", dot_source(graph).encode(), quiet=True)
    except graphviz.ExecutableNotFound:
        raise EdgekitError("Graphviz's dot program is not installed: the graph view cannot lay the model out",
                           INSTALL_HINT) from None
    except graphviz.CalledProcessError as exc:
        raise EdgekitError(f"Graphviz's dot failed: {(exc.stderr or b'').decode(errors='replace')[:300]}",
                           "the graph is shown in no other way; report this model") from None
    ids = [node.id for node in graph.nodes]
    return parse(json.loads(raw), lambda name: ids[int(name[1:])])


def parse(data: dict[str, Any], node_id: Callable[[str], str] = str) -> Layout:
    """A :class:`Layout` from dot's ``json0`` output (y flipped so that the first rank is on top)."""
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    height = y1 - y0
    result = Layout(width=x1 - x0, height=height)
    names = {}
    for obj in data.get("objects", []):
        if "pos" not in obj:
            continue
        x, y = (float(v) for v in obj["pos"].split(","))
        result.nodes[node_id(obj["name"])] = (x - x0, height - (y - y0))
        names[obj["_gvid"]] = node_id(obj["name"])
    for edge in data.get("edges", []):
        points = []
        for part in edge.get("pos", "").split():
            if part.startswith(("e,", "s,")):
                continue  # arrow head / tail end points, drawn separately
            x, y = (float(v) for v in part.split(","))
            points.append((x - x0, height - (y - y0)))
        result.edges.append((names.get(edge["tail"], ""), names.get(edge["head"], ""), points))
    return result
