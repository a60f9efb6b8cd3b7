"""The Convert view's words: verdict cells, budgets, optimization summary, target facts and the default choices
a target implies (no widgets here beyond table cells)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.gui.widgets import item

PRECISIONS = ("fp32", "fp16", "int8", "dynamic")


def fmt(value: float | None, digits: int = 5) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def artifact_status(artifact: Any) -> str:
    """passed / inconclusive / failed / error / over budget, as the CLI's table says it."""
    if artifact.passed:
        return "passed"
    if artifact.validation.status in ("failed", "error"):
        return artifact.validation.status
    return artifact.verdict if artifact.verdict == "inconclusive" else "over budget"


def with_interval(value: float | None, interval: tuple[float, float] | None, digits: int) -> str:
    """``0.98123`` over ``[0.97710, 0.98502]``: a value and its 95% interval in one cell, on two lines (narrow columns)."""
    text = fmt(value, digits)
    return text if value is None or interval is None else f"{text}\n[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def optimization_summary(report: Any) -> str:
    """One line per optimization step (accuracy, parameters, sparsity), or nothing without steps."""
    if report is None:
        return ""
    lines = []
    for r in report.records:
        metric = f"{r.accuracy:.2%}" if r.accuracy is not None else f"mse {r.loss:.4g}"
        lines.append(f"{r.step}: {metric}, {r.parameters:,} parameters, {r.sparsity:.0%} sparse")
    return "\nOptimization — " + " → ".join(lines)


def budgets_item(artifact: Any):
    if not artifact.budgets:
        return item("-")
    failed = [b.name for b in artifact.budgets if b.status == "failed"]
    undecided = [b.name for b in artifact.budgets if b.status == "inconclusive"]
    measured = [b for b in artifact.budgets if b.status != "not_measured"]
    if failed:
        return item(f"failed: {', '.join(failed)}", "failed")
    if undecided:
        return item(f"inconclusive: {', '.join(undecided)}", "inconclusive",
                    tooltip="\n".join(b.message for b in artifact.budgets))
    return item(f"{len(measured)} passed", "passed", tooltip="\n".join(b.message for b in artifact.budgets))


def compatible_choices(profile: Any, formats: list[str], precisions: list[str]) -> tuple[list[str], list[str]]:
    """The chosen formats and precisions ``profile`` supports; its own defaults where none of them is."""
    kept_formats = [f for f in formats if f in profile.formats] or list(profile.formats)
    allowed = profile.supported_precisions or PRECISIONS
    kept_precisions = [p for p in precisions if p in allowed] or [profile.precision]
    return kept_formats, kept_precisions


def default_output_dir(model: str, target: str) -> str:
    """The default build folder of ``model`` for ``target``: ``<folder of the model>/<stem>-<target>-edgekit``."""
    path = Path(model).resolve()
    return str(path.parent / f"{path.name.split('.')[0]}-{target}-edgekit")


def target_facts(profile: Any) -> str:
    """A device profile's facts as a few lines of rich text."""
    runtime = profile.runtime
    budgets = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in profile.budgets.model_dump(exclude_none=True).items())
    lines = [
        profile.description,
        f"<b>formats</b> {', '.join(profile.formats)} · <b>precision</b> {profile.precision}"
        + (f" (supports {', '.join(profile.supported_precisions)})" if profile.supported_precisions else ""),
        f"<b>runtime</b> TFLite {runtime.tflite_delegate} · ONNX {runtime.onnx_execution_provider}"
        f" · OpenVINO {runtime.openvino_device}",
        f"<b>layout</b> {profile.layout} · <b>static shapes</b> {'yes' if profile.static_shapes else 'no'}"
        + (f" · <b>op set</b> {profile.opset}" if profile.opset else "")
        + ("" if profile.cpu_fallback else " · <b>no CPU fallback</b>"),
    ]
    if budgets:
        lines.append(f"<b>budgets</b> {budgets}")
    return "<br>".join(lines)
