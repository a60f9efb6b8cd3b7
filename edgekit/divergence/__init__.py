"""Where a quantized artifact diverges from its float reference, layer by layer, and why.

The public entry point is :func:`debug`, exported as ``edgekit.debug(artifact, data)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.divergence.report import REPORT_SCHEMA_VERSION, Culprit, DivergenceReport, LayerDivergence

DEFAULT_SAMPLES = 64


def debug(
    artifact: str | Path,
    data: Any,
    *,
    calibration: Any = None,
    reference: str | Path | None = None,
    samples: int = DEFAULT_SAMPLES,
) -> DivergenceReport:
    """Trace ``artifact`` (an int8 or fp16 .tflite, .onnx or OpenVINO .xml) against its float reference on ``data``.

    The reference is ``reference`` (a float model of the same format) or the fp32 artifact of the same
    format listed in the build's manifest beside ``artifact``. ``calibration`` (the data the artifact
    was calibrated on) gives the calibration ranges the report compares with ``data``'s.
    """
    from edgekit.divergence.culprits import rank
    from edgekit.divergence.resolve import artifact_format, find_reference, input_specs, precision_of, read_feeds
    from edgekit.divergence.trace import compare, output_agreement, run_trace

    path = Path(artifact)
    fmt = artifact_format(path)
    ref_path = find_reference(path, fmt, reference)
    inputs = input_specs(path, ref_path, fmt)
    feeds = read_feeds(data, inputs, "evaluation", samples)
    cal_feeds = read_feeds(calibration, inputs, "calibration", samples) if calibration is not None else []
    ref_trace = run_trace(ref_path, fmt, feeds)
    art_trace = run_trace(path, fmt, feeds)
    cal_trace = run_trace(ref_path, fmt, cal_feeds) if cal_feeds else None
    layers, notes = compare(ref_trace, art_trace, cal_trace)
    if not layers:
        from edgekit.errors import EdgekitError

        raise EdgekitError(
            f"no layer of {path.name} could be matched with the reference {ref_path.name}",
            "give the float model this artifact was converted from (--reference), in the same format",
        )
    cosine, top1 = output_agreement(ref_trace, art_trace)
    from edgekit.activations import coverage

    worst_covered = coverage(*(_flat(t.values) for t in (cal_trace, ref_trace))) if cal_trace is not None else []
    if cal_trace is None:
        notes.append("no calibration data given: ranges and outlier ratios are from the evaluation data")
    return DivergenceReport(
        artifact=str(path), format=fmt, precision=precision_of(path), reference=str(ref_path), samples=len(feeds),
        calibration_samples=len(cal_feeds), output_cosine=cosine, top1_agreement=top1, layers=layers,
        culprits=rank(layers, ref_trace.outputs), partial=bool(notes and any("counterpart" in n or "expose" in n for n in notes)),
        notes=notes, coverage=worst_covered,
    )


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    return {key: np.asarray(value, dtype=np.float64).ravel() for key, value in values.items()}


__all__ = ["REPORT_SCHEMA_VERSION", "Culprit", "DivergenceReport", "LayerDivergence", "debug"]
