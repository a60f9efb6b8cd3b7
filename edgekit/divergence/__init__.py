"""Where a quantized artifact diverges from its float reference, layer by layer, and why.

The public entry point is :func:`debug`, exported as ``edgekit.debug(artifact, data)``.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from edgekit.divergence.report import REPORT_SCHEMA_VERSION, Culprit, DivergenceReport, LayerDivergence
from edgekit.progress import ProgressCallback, ProgressEvent, WatchedFeeds, ignore, raise_if_cancelled

DEFAULT_SAMPLES = 64


def debug(
    artifact: str | Path,
    data: Any,
    *,
    calibration: Any = None,
    reference: str | Path | None = None,
    samples: int = DEFAULT_SAMPLES,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> DivergenceReport:
    """Trace ``artifact`` (an int8 or fp16 .tflite, .onnx or OpenVINO .xml) against its float reference on ``data``.

    The reference is ``reference`` (a float model of the same format) or the fp32 artifact of the same
    format listed in the build's manifest beside ``artifact``. ``calibration`` (the data the artifact
    was calibrated on) gives the calibration ranges the report compares with ``data``'s. ``progress``
    receives a ``ProgressEvent`` per traced sample (stages ``debug:reference``, ``debug:artifact``,
    ``debug:calibration``, then ``debug:compare``); setting ``cancel`` stops the trace at the next sample
    with ``edgekit.errors.Cancelled``.
    """
    from edgekit.divergence.resolve import artifact_format, find_reference, input_specs, read_feeds

    progress = progress or ignore
    cancel = cancel or threading.Event()
    path = Path(artifact)
    fmt = artifact_format(path)
    ref_path = find_reference(path, fmt, reference)
    inputs = input_specs(path, ref_path, fmt)
    feeds = read_feeds(data, inputs, "evaluation", samples)
    cal_feeds = read_feeds(calibration, inputs, "calibration", samples) if calibration is not None else []
    ref_trace = _trace(ref_path, fmt, feeds, "reference", progress, cancel)
    art_trace = _trace(path, fmt, feeds, "artifact", progress, cancel)
    cal_trace = _trace(ref_path, fmt, cal_feeds, "calibration", progress, cancel) if cal_feeds else None
    raise_if_cancelled(cancel, "edgekit.debug")
    progress(ProgressEvent("debug:compare", 0.0, "comparing the layers"))
    report = _report(path, fmt, ref_path, ref_trace, art_trace, cal_trace, len(feeds), len(cal_feeds))
    progress(ProgressEvent("debug:compare", 1.0, "comparing the layers"))
    return report


def _trace(path: Path, fmt: str, feeds: list, stage: str, progress: ProgressCallback, cancel: threading.Event) -> Any:
    """``run_trace`` of ``path`` with a progress event per sample and the cancel checked before each one."""
    from edgekit.divergence.trace import run_trace

    def on_feed(done: int, count: int) -> None:
        progress(ProgressEvent(f"debug:{stage}", done / count, f"tracing the {stage} ({done}/{count} samples)"))

    raise_if_cancelled(cancel, "edgekit.debug")
    progress(ProgressEvent(f"debug:{stage}", 0.0, f"tracing the {stage}"))
    return run_trace(path, fmt, WatchedFeeds(feeds, cancel, on_feed, "edgekit.debug"))


def _report(path: Path, fmt: str, ref_path: Path, ref_trace: Any, art_trace: Any, cal_trace: Any, samples: int,
            calibration_samples: int) -> DivergenceReport:
    from edgekit.divergence.culprits import rank
    from edgekit.divergence.resolve import precision_of
    from edgekit.divergence.trace import compare

    comparison = compare(ref_trace, art_trace, cal_trace)
    layers, notes = comparison.layers, comparison.notes
    if not layers:
        from edgekit.errors import EdgekitError

        raise EdgekitError(
            f"no layer of {path.name} could be matched with the reference {ref_path.name}",
            "give the float model this artifact was converted from (--reference), in the same format",
        )
    cosine, top1 = comparison.output_cosine, comparison.top1_agreement
    from edgekit.activations import streamed_coverage

    worst_covered = streamed_coverage(cal_trace.samples(), ref_trace.samples()) if cal_trace is not None else []
    if cal_trace is None:
        notes.append("no calibration data given: ranges and outlier ratios are from the evaluation data")
    return DivergenceReport(
        artifact=str(path), format=fmt, precision=precision_of(path), reference=str(ref_path), samples=samples,
        calibration_samples=calibration_samples, output_cosine=cosine, top1_agreement=top1, layers=layers,
        culprits=rank(layers, ref_trace.outputs), partial=bool(notes and any("counterpart" in n or "expose" in n for n in notes)),
        notes=notes, coverage=worst_covered,
    )


__all__ = ["REPORT_SCHEMA_VERSION", "Culprit", "DivergenceReport", "LayerDivergence", "debug"]
