"""The graph of a model file for the desktop app's graph view: ops, edges, placement on a target, int8 error.

:func:`model_graph` is public as ``edgekit.model_graph``; it reads files without running them and imports
no framework beyond the format's reader (onnx for .onnx, the LiteRT schema for .tflite).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.graph.model import GraphEdge, GraphNode, ModelGraph, Placement

__all__ = ["GraphEdge", "GraphNode", "ModelGraph", "Placement", "model_graph"]


def model_graph(path: str | Path, *, target: str | Path | None = None, compatibility: Any = None,
                divergence: Any = None, isolate: bool | None = None) -> ModelGraph:
    """The graph of the .onnx, .tflite or OpenVINO .xml file at ``path``.

    With ``target`` each op is placed (accelerator / fallback / unsupported / not checked) from
    ``compatibility`` (an ``edgekit.check`` report of this file for ``target``; checked here when not
    given). An artifact is placed in its own format; a source ONNX model in its own format when the
    target builds ONNX, else in the target's first format (a likely mapping until the artifact is built).
    With ``divergence`` (an ``edgekit.debug`` report of this file) each traced layer carries the
    error it adds and the culprits are marked. ``isolate`` is ``edgekit.check``'s (False: load the model in
    this process, for callers that are a worker process already).
    """
    from edgekit.errors import ModelFileError
    from edgekit.formats.sniff import sniff_artifact
    from edgekit.graph.readers import READERS

    path = Path(path)
    fmt = sniff_artifact(path).name
    if fmt not in READERS:
        raise ModelFileError(f"{path.name} is a {fmt} file: the graph view reads .onnx, .tflite and OpenVINO .xml",
                             "open the build's ONNX, TFLite or OpenVINO artifact instead")
    nodes, edges = READERS[fmt](path)
    unique = list({(e.source, e.target): e for e in edges}.values())
    graph = ModelGraph(path=str(path), format=fmt, nodes=nodes, edges=unique)
    if target is not None:
        from edgekit.compat.check import check
        from edgekit.graph.annotate import place
        from edgekit.profiles import load_profile

        profile = load_profile(target)
        report = compatibility if compatibility is not None else check(path, target=target, isolate=isolate)
        graph = place(graph, report, profile, fmt if fmt in report.stats else next(iter(report.stats), fmt))
    if divergence is not None:
        from edgekit.graph.annotate import add_errors

        graph = add_errors(graph, divergence)
    return graph
