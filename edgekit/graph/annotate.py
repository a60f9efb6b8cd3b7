"""Put what a target and a debug trace say on the nodes of a graph: placement from a compatibility report,
the int8 error each layer adds from a divergence report."""
from __future__ import annotations

from typing import Any

from edgekit.graph.model import ModelGraph

_QDQ_SUFFIX = "_QuantizeLinear_Input"  # ONNX Runtime's QDQ quantizer renames a layer output that is a graph output


def place(graph: ModelGraph, report: Any, profile: Any, fmt: str) -> ModelGraph:
    """``graph`` with each op placed from ``report`` (an ``edgekit.check`` CompatibilityReport) for ``fmt``.

    Ops the report names as falling back run on the CPU (``fallback``), or nowhere on a target without a CPU
    fallback or for a route that refuses them (``unsupported``). When the target states no op set the
    report cannot tell: every op stays ``not_checked`` unless the target is itself a CPU.
    """
    stats = report.stats.get(fmt)
    known = bool(stats and stats.opset_known)
    fallback = set(stats.fallback_ops) if known else set()
    refused = {f.layer: f.message for f in report.findings
               if f.layer and f.format == fmt and (f.kind == "route" or (f.kind == "op" and f.severity == "error"))}
    reasons: dict[str, str] = {}
    for f in report.findings:  # an op's own finding first; a prefix partition's note names the op it cuts at too
        if f.layer and f.format == fmt and f.kind == "op":
            reasons.setdefault(f.layer, f.message)
    cpu_target = profile.device_class == "cpu"
    fallback |= _after_the_cut(graph, profile, fallback)
    for node in graph.ops():
        if node.name in refused:
            node.placement, node.placement_reason = "unsupported", refused[node.name]
        elif node.name in fallback:
            node.placement = "fallback" if profile.cpu_fallback else "unsupported"
            node.placement_reason = reasons.get(node.name, f"after the first op {profile.name} cannot map: runs on the CPU")
        elif known:
            node.placement, node.placement_reason = "accelerator", f"in {profile.name}'s op set"
        elif cpu_target:
            node.placement, node.placement_reason = "accelerator", f"{profile.name} is a CPU: every op runs there"
        else:
            node.placement = "not_checked"
            node.placement_reason = f"not checked: {profile.name} states no op set, so where this op runs is unknown"
    for node in graph.nodes:
        if node.kind != "op":
            node.placement = "io"
    graph.target, graph.placement_format, graph.opset_known = profile.name, fmt, known or cpu_target
    if not known and not cpu_target:
        graph.notes.append(f"{profile.name} states no op set: placement is not checked (not the same as clean)")
    return graph


def _after_the_cut(graph: ModelGraph, profile: Any, fallback: set[str]) -> set[str]:
    """On a prefix-partitioning op set (the Edge TPU's), every op after the first that falls back, also the ones
    the format folds into a neighbour (a BatchNormalization after a Conv) that the check does not list."""
    from edgekit.compat.check import load_allowlist

    allowlist = load_allowlist(profile)
    if not fallback or allowlist is None or allowlist.partitioning != "prefix":
        return set()
    names = [n.name for n in graph.ops()]
    cut = min(names.index(name) for name in fallback if name in names) if fallback & set(names) else len(names)
    return set(names[cut + 1:])


def add_errors(graph: ModelGraph, report: Any) -> ModelGraph:
    """``graph`` with each traced layer's added error and cosine from ``report`` (an ``edgekit.debug``
    DivergenceReport), matched by op name, else by the tensor it writes; culprits marked."""
    by_name = {n.name: n for n in graph.ops()}
    by_tensor = {t: n for n in graph.ops() for t in n.outputs}
    by_tensor.update({t.removesuffix(_QDQ_SUFFIX): n for n in graph.ops() for t in n.outputs})
    culprits = {c.key for c in report.culprits} | {c.name for c in report.culprits}
    matched = 0
    for layer in report.layers:
        node = by_tensor.get(layer.key) or by_name.get(layer.name)
        if node is None:
            continue
        matched += 1
        node.added_error, node.cosine, node.trace_index = layer.added_error, layer.cosine, layer.index
        node.culprit = layer.key in culprits or layer.name in culprits
    graph.debugged = True
    if matched < len(report.layers):
        graph.notes.append(f"{len(report.layers) - matched} of {len(report.layers)} traced layers have no node in this graph")
    return graph
