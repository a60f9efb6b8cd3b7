"""The measured per-layer sensitivity pass of the int8 rescue, for when the trace's attribution is uncertain.

The divergence trace attributes the output error to the layers where it appears. When no culprit stands out
(the error is spread over many layers, as on PP-OCR's text detector, where hundreds of elementwise ops each add
a little), the attribution does not say which layer to keep in float. Then each candidate group is measured
instead, as NNCF's accuracy control and Olive do: the artifact is built with only that group reverted to float
and validated on the build's held-out validation data; the groups are ranked by the measured gain of the output
metric, those that do not help are dropped. The pass is bounded by the search's time budget: it stops measuring
while enough time is left for the search that follows. It costs one build per group, so on an uncertain
attribution it comes after the cheaper whole-model remedies expected to remove more (``edgekit.rescue_order``).
"""
from __future__ import annotations

from typing import Any

from edgekit.rescue_remedies import Remedy

CERTAIN_SHARE = 0.4  # the trace's top culprit explains at least this share of the added error: attribution is trusted
MEASURED_GROUPS = 8  # candidate groups measured at most per round
_QDQ = {"QuantizeLinear", "DequantizeLinear", "FakeQuantize", "QUANTIZE", "DEQUANTIZE", "Convert"}


def uncertain(report: Any) -> bool:
    """True when the trace names no culprit, or its top culprit explains under ``CERTAIN_SHARE`` of the error."""
    return not report.culprits or report.culprits[0].share < CERTAIN_SHARE


def candidates(groups: list[Remedy], report: Any, kept: set[str], limit: int = MEASURED_GROUPS) -> list[Remedy]:
    """The groups worth measuring: the attribution's own groups first, then single layers by added error."""
    found, seen = list(groups[:limit]), {n for g in groups[:limit] for n in g.layers} | kept
    for layer in sorted(report.layers, key=lambda lay: lay.added_error, reverse=True):
        if len(found) >= limit:
            break
        if layer.name in seen or layer.op_type in _QDQ or layer.added_error <= 0:
            continue
        found.append(Remedy("float", f"{layer.name} (added error {layer.added_error:.3g}, measured)", layers=(layer.name,)))
        seen.add(layer.name)
    return found


def measured_order(search: Any, groups: list[Remedy], gain: Any) -> list[Remedy]:
    """Build each group alone on top of the current job; the groups that raise the metric, largest gain first.

    ``search`` is the running ``rescue_search.Search`` (its ``_try`` builds and validates, its budget bounds the
    pass), ``gain(artifact)`` the metric gain of a built artifact over the current one. Each measurement is
    recorded in ``search.sensitivity``."""
    import time

    measured: list[tuple[float, int, Remedy]] = []
    seconds: list[float] = []
    for order, group in enumerate(groups):
        mean = sum(seconds) / len(seconds) if seconds else 0.0
        if search._over() or time.monotonic() + 3 * mean > search.deadline:  # keep room for the search's builds
            search.notes.append(f"the sensitivity pass measured {len(measured)} of {len(groups)} groups within the budget")
            break
        started = time.monotonic()
        built = search._try([group])
        seconds.append(time.monotonic() - started)
        if built is None:
            continue
        value = gain(built[1])
        search.tries[-1]["sensitivity"] = True
        search.sensitivity.append({"layers": list(group.layers), "detail": group.detail, "measured_gain": round(value, 6),
                                   "cosine": built[1].validation.cosine, "top1_agreement": built[1].validation.top1_agreement})
        measured.append((value, -order, group))
    return [group for value, _, group in sorted(measured, key=lambda m: (m[0], m[1]), reverse=True) if value > 0]
