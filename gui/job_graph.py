"""The job process's side of the Check step and the graph view (run by :mod:`edgekit.gui.job`)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edgekit.gui.jobs import CheckRequest, GraphRequest, Progress, Result


def _progress(send: Callable[[Any], None]) -> Callable[[Any], None]:
    return lambda event: send(Progress(stage=event.stage, fraction=event.fraction, message=event.message))


def run_check(request: CheckRequest, send: Callable[[Any], None], cancel: threading.Event) -> None:
    """``edgekit.check`` of the model for the target: the findings before converting."""
    import edgekit

    report = edgekit.check(request.model, target=request.target, formats=request.formats or None,
                           precision=request.precision or None, allow_unsafe=request.allow_unsafe,
                           progress=_progress(send), cancel=cancel)
    send(Result(data=report.model_dump(mode="json")))


def run_graph(request: GraphRequest, send: Callable[[Any], None], cancel: threading.Event) -> None:
    """The graph placed on the target (and traced by ``edgekit.debug`` when data is given), laid out by Graphviz."""
    from edgekit.gui.graph_layout import layout

    import edgekit

    trace = None
    if request.data:
        trace = edgekit.debug(request.path, request.data, calibration=request.calibration or None,
                              progress=_progress(send), cancel=cancel)
    send(Progress(stage="graph", fraction=None, message="reading the graph and checking it against the target"))
    graph = edgekit.model_graph(request.path, target=request.target or None, divergence=trace,
                                 isolate=False)  # this job process is the isolation
    send(Progress(stage="graph", fraction=None, message=f"laying out {len(graph.nodes)} nodes with Graphviz"))
    placed = layout(graph)
    send(Result(data={"graph": graph.model_dump(mode="json"), "trace": trace.model_dump(mode="json") if trace else None,
                      "layout": {"width": placed.width, "height": placed.height, "nodes": placed.nodes,
                                 "edges": placed.edges}}))
