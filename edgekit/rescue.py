"""Automatic int8 rescue: remedies tried as real builds until the artifact meets an accuracy target with as
little of its compute taken out of int8 as the search finds, within a time budget.

Plain int8 is built and validated first: when it meets the target the rescue ends there (no reference,
no trace). Otherwise the fp32 artifact of the same format is built as the trace's reference and
``edgekit.rescue_search`` runs (sensitivity from the divergence trace, then remedies from
``edgekit.rescue_remedies``, each re-validated). The best artifact is published; when it misses the target
its validation fails, so the build says so and the artifact is kept, marked failed. The record lists every
build tried, the accuracy-vs-int8-share curve of the accepted steps, why the search stopped and what it
could not fix.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.options import Tolerances
from edgekit.rescue_cost import float_recurrent_share
from edgekit.rescue_latency import measure_latency
from edgekit.rescue_remedies import Allowed
from edgekit.rescue_search import Search, meets, point
from edgekit.session import RouteJob
from edgekit.specs import Artifact

BASE_BUDGET_S = 120.0  # time budget of a rescue: this much, plus PER_MB_S per MiB of the int8 artifact
PER_MB_S = 240.0
MAX_BUDGET_S = 1800.0
MIN_INT8_SHARE = 0.8  # below this share of int8 compute the record says so
_KEYS = {"cosine": "cosine", "top1": "top1_agreement", "top1_agreement": "top1_agreement"}


def parse_target(target: Mapping[str, float] | str) -> Tolerances:
    """``{"cosine": 0.99, "top1": 0.97}`` or ``"cosine=0.99,top1=0.97"`` as validation thresholds."""
    if isinstance(target, str):
        pairs = [item.split("=", 1) for item in target.replace(" ", "").split(",") if item]
        if any(len(p) != 2 for p in pairs):
            raise InvalidOptionError(f"cannot read the accuracy target '{target}'", "write it as cosine=0.99,top1=0.97")
        target = dict(pairs)
    values: dict[str, float] = {}
    for key, value in dict(target).items():
        if key not in _KEYS:
            raise InvalidOptionError(f"unknown accuracy target '{key}'", "use cosine= and/or top1=")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidOptionError(f"the accuracy target {key}={value!r} is not a number", "e.g. cosine=0.99") from None
        if not 0.0 < number <= 1.0:
            raise InvalidOptionError(f"the accuracy target {key}={number} is outside (0, 1]", "e.g. cosine=0.99, top1=0.97")
        values[_KEYS[key]] = number
    if not values:
        raise InvalidOptionError("the accuracy target is empty", "e.g. cosine=0.99")
    return Tolerances(cosine=values.get("cosine", 0.0), top1_agreement=values.get("top1_agreement"))


def allowed_remedies(profile: Any, framework: str, fmt: str) -> Allowed:
    """What the device profile and the route let a rescue change."""
    int16 = profile.int16_activations if profile.int16_activations is not None else profile.allow_float_fallback
    litert_torch = fmt == "tflite" and framework in ("torch", "onnx")  # both quantize with litert-torch's PT2E quantizer
    return Allowed(float_layers=profile.allow_float_fallback, int16=int16, torch_tflite=litert_torch)


def default_budget(int8_size_bytes: int) -> float:
    """Seconds a rescue may take, scaled by model size (about 2 minutes for a small model, 30 at most)."""
    return min(MAX_BUDGET_S, BASE_BUDGET_S + PER_MB_S * int8_size_bytes / 2**20)


def rescue_route(
    build: Callable[[RouteJob], Artifact], job: RouteJob, target: Tolerances, feeds: list[dict[str, Any]],
    *, allowed: Allowed, budget_s: float | None = None,
) -> tuple[Artifact, dict[str, Any]]:
    """Build ``job`` (an int8 route) to meet ``target``; returns the published artifact and the rescue record.

    ``build`` builds and validates one job (``BuildSession.build_route`` through the worker session).
    """
    started = time.monotonic()
    target = job.tolerances.model_copy(update={"cosine": target.cosine, "top1_agreement": target.top1_agreement})
    job = replace(job, tolerances=target)
    plain = build(job)
    first = {**point(job, plain), "remedies": []}
    notes: list[str] = _recurrent_in_float(plain)
    if not allowed.float_layers:
        notes.append("the target device runs integer-only: no layer may stay in float"
                     + ("" if allowed.int16 else ", and it has no int16 activations"))
    if meets(plain, target):
        return plain, _record(target, (job, job), plain, [first], [], notes, "target met", started, None)
    if allowed.torch_tflite:
        notes.append("litert-torch's quantizer (the PyTorch and ONNX routes to TFLite) takes no remedy (per-channel "
                     "weights only, already used): convert to ONNX or OpenVINO for mixed precision")
        record = _record(target, (job, job), plain, [first], [], notes, "no remedy for this route", started, None)
        return plain.model_copy(update={"notes": (*plain.notes, record["summary"], *notes)}), record
    budget = budget_s if budget_s is not None else default_budget(plain.size_bytes)
    if budget > 0:
        first.update(measure_latency(plain.path, plain.format))
    work = job.staging_dir / "rescue"
    search = Search(build, target, feeds, allowed, Path(), work, started + budget, job, plain, curve=[first])
    if time.monotonic() < search.deadline:
        fp32 = replace(job, precision="fp32", calibration=[], tolerances=Tolerances.default_for("fp32"), float_layers=(),
                       output_dir=work / "reference", staging_dir=work / "reference" / "staging")
        fp32.staging_dir.mkdir(parents=True, exist_ok=True)
        reference = build(fp32)
        search.reference, reference_size = Path(reference.path), reference.size_bytes
        reference_latency = measure_latency(reference.path, reference.format)
        search.run()
    else:
        search.stop, reference_size, reference_latency = "time budget", None, {}
    final = search.artifact if search.job == job else build(search.job)
    curve = search.curve if final is search.artifact else [*search.curve[:-1], {**search.curve[-1], **point(search.job, final)}]
    notes.extend(_slower_than_float(curve[-1].get("latency_ms"), reference_latency.get("latency_ms"), search.job))
    if not meets(final, target):
        notes.append(_unfixed(search, allowed))
    record = _record(target, (job, search.job), final, curve, search.tries, [*notes, *search.notes], search.stop, started, budget)
    record.update(reference_size_bytes=reference_size, reference_latency_ms=reference_latency.get("latency_ms"),
                  sensitivity=search.sensitivity)
    return final.model_copy(update={"notes": (*final.notes, record["summary"], *record["notes"])}), record


_RECURRENT_WHY = {
    "onnx": "ONNX Runtime's static (QDQ) quantizer has no int8 recurrent layers",
    "openvino": "edgekit keeps recurrent layers in float (NNCF's int8 LSTM broke silero-vad's state and resemblyzer's embedding)",
    "tflite": "the TFLite quantizer left them float",
}


def _recurrent_in_float(plain: Artifact) -> list[str]:
    """What plain int8 already leaves float in recurrent layers, and the remedy edgekit does not have for it."""
    shares = float_recurrent_share(plain.path, plain.format)
    if not shares:
        return []
    why = _RECURRENT_WHY.get(plain.format, "the route's quantizer left them float")
    return [f"{100 * sum(shares.values()):.0f}% of the multiply-accumulates are in recurrent layers "
            f"({', '.join(sorted(shares))}) that stay float in every int8 build of this route: {why}; the remedy "
            "missing is weight-only int8 for recurrent layers"]


def _slower_than_float(latency: float | None, reference: float | None, chosen: RouteJob) -> list[str]:
    """A note when the published artifact's median latency (ms) is above the fp32 reference's."""
    if not latency or not reference or latency <= reference:
        return []
    why = (": ONNX Runtime fuses Quantize/Dequantize pairs into integer kernels for 8-bit tensors only, so int16 "
           "activations run float kernels between them (an NPU with a16w8 runs them natively)"
           if chosen.format == "onnx" and chosen.scheme.activations == "int16" else "")
    return [f"the rescued artifact's median latency ({latency:.3g} ms) is above the fp32 reference's ({reference:.3g} ms, "
            f"timed one after the other, one thread){why}"]


def _unfixed(search: Search, allowed: Allowed) -> str:
    culprits = search.curve[-1].get("culprits", [])
    named = ", ".join(c["name"] for c in culprits) or "no single layer"
    missing = []
    if not allowed.float_layers:
        missing.append("float layers (integer-only device)")
    if not allowed.int16:
        missing.append("int16 activations")
    return (f"could not fix: {named} still diverge when the search stopped ({search.stop})"
            + (f"; remedies this device does not allow: {', '.join(missing)}" if missing else ""))


def _record(
    target: Tolerances, jobs: tuple[RouteJob, RouteJob], final: Artifact, curve: list[dict[str, Any]],
    tries: list[dict[str, Any]], notes: list[str], stop: str, started: float, budget: float | None,
) -> dict[str, Any]:
    """The rescue record; ``jobs`` is (the plain job, the chosen one), the curve's last point is ``final``."""
    original, chosen = jobs
    met = meets(final, target)
    changes = _scheme_changes(original, chosen)
    summary = (
        f"accuracy rescue: {'met' if met else 'did NOT meet'} the target (cosine >= {target.cosine}"
        + (f", top-1 >= {target.top1_agreement}" if target.top1_agreement else "")
        + f") after {len(tries) + 1} build(s), stopped on {stop}; kept in float: {', '.join(chosen.float_layers) or 'none'}"
        + (f"; scheme changed to {changes}" if changes else "")
    )
    share = curve[-1]["int8_compute_share"]
    if share is not None and share < MIN_INT8_SHARE:
        notes.append(f"only {100 * share:.0f}% of the multiply-accumulates run with int8 weights (< {100 * MIN_INT8_SHARE:.0f}%)")
    if met and final.validation.status != "passed":
        notes.append(f"the accuracy target is met but the artifact fails another gate: {final.validation.message}")
    return {
        "target": target.model_dump(exclude_none=True), "met": met, "stopped": stop, "summary": summary,
        "float_layers": list(chosen.float_layers), "scheme_changes": changes, "curve": curve, "tries": tries,
        "notes": notes, "seconds": round(time.monotonic() - started, 2), "budget_s": budget,
        "size_bytes": final.size_bytes, "cosine": final.validation.cosine, "top1_agreement": final.validation.top1_agreement,
        "int8_compute_share": share, "latency_ms": curve[-1].get("latency_ms"),
    }


def _scheme_changes(original: RouteJob, chosen: RouteJob) -> dict[str, Any]:
    before, after = original.scheme.model_dump(), chosen.scheme.model_dump()
    return {key: value for key, value in after.items() if before.get(key) != value}
