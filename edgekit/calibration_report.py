"""``edgekit.data_report``: is a calibration set fit to quantize this model? Checked before quantizing.

Counts and shapes, duplicates, NaN/Inf and value ranges (:mod:`edgekit.data_checks`), then the model's part,
run where the model is loaded: the reference model's predicted-class histogram and the activation-range
coverage of validation data by the calibration data, per layer (:mod:`edgekit.activations`). Without
validation data the coverage is of the part a build would hold out (:mod:`edgekit.holdout`).
"""
from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data import Feed, load_feeds
from edgekit.data_checks import DataReport, class_findings, coverage_findings, finite_rows, summarize
from edgekit.errors import DataError
from edgekit.shapes import fix_shapes, with_shapes

DEFAULT_SAMPLES = 300


def data_report(
    model: Any, data: Any, *, validation_data: Any = None,
    expected_range: Mapping[str, Sequence[float]] | Sequence[float] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None, samples: int = DEFAULT_SAMPLES, example_inputs: Any = None,
    output_kinds: Mapping[str, str] | None = None, allow_unsafe: bool = False, timeout: float | None = None,
) -> DataReport:
    """Report on calibration ``data`` for ``model`` (a model file or an in-memory model, as :func:`edgekit.convert`).

    ``validation_data`` (data the model is known to work on) is the reference for value ranges and activation
    coverage; ``expected_range`` ((low, high), or {input: (low, high)}) declares the inputs' range instead.
    Problems are warnings with hints in ``report.findings``; unusable data (all NaN, all identical) is a DataError.
    """
    from edgekit.messages import DataProbe, OpenSource
    from edgekit.sources import is_in_memory
    from edgekit.worker import InProcessSession, WorkerSession

    with tempfile.TemporaryDirectory(prefix="edgekit-data-") as logs:
        session = InProcessSession() if is_in_memory(model) else WorkerSession(Path(logs))
        try:
            source = session.call(OpenSource(model, example_inputs, allow_unsafe), timeout=timeout)
            inputs = with_shapes(source.inputs, fix_shapes(input_shapes, source.inputs))
            feeds = load_feeds(data, inputs, what="calibration", limit=samples, allow_non_finite=True)
            reference = [] if validation_data is None else load_feeds(validation_data, inputs, what="validation", limit=samples)
            expected = _expected(expected_range, reference, [s.name for s in inputs])
            report = summarize(feeds, expected)  # unusable data fails here, before the model runs
            good = [feed for feed, ok in zip(feeds, finite_rows(feeds)) if ok]
            calibration, validation = _parts(good, reference)
            histogram, rows, rescaling = session.call(DataProbe(calibration, validation, dict(output_kinds or {})),
                                                      timeout=timeout)
        finally:
            session.close()
    if rescaling and not expected:  # the model scales raw pixels itself: 0..255 is what it expects
        report = summarize(feeds, {s.name: ((0.0, 255.0), f"the model's first layer rescales ({rescaling})") for s in inputs})
    findings = [*report.findings, *class_findings(histogram), *coverage_findings(rows)]
    return report.model_copy(update={"class_histogram": histogram, "coverage": rows, "findings": findings,
                                     "validation_samples": len(validation)})


def _expected(declared: Any, reference: list[Feed], names: list[str]) -> dict[str, tuple[tuple[float, float], str]]:
    """Expected range per input: declared first, else the reference data's observed range (0.1 to 99.9 percentile)."""
    if declared is not None:
        if isinstance(declared, Mapping):
            return {name: ((float(r[0]), float(r[1])), "declared") for name, r in declared.items()}
        low, high = declared
        return {name: ((float(low), float(high)), "declared") for name in names}
    if not reference:
        return {}
    result = {}
    for name in names:
        values = np.concatenate([np.asarray(feed[name], dtype=np.float64).ravel() for feed in reference])
        if np.issubdtype(np.asarray(reference[0][name]).dtype, np.floating):
            low, high = np.percentile(values, [0.1, 99.9])
            result[name] = ((float(low), float(high)), "the validation data's range")
    return result


def _parts(good: list[Feed], reference: list[Feed]) -> tuple[list[Feed], list[Feed]]:
    """Calibration and validation feeds for the coverage: the reference data when given, else a build's split."""
    from edgekit import holdout

    if reference:
        return good, reference
    try:
        held = holdout.split(good, len(good))
    except DataError:
        return good, []
    return held.calibration, held.validation


def manifest_summary(calibration: list[Feed], record: dict[str, Any]) -> dict[str, Any]:
    """The model-free data report of a build's calibration data, with the split's class histogram, for the manifest."""
    if not calibration:
        return {}
    try:
        report = summarize(calibration)
    except DataError as exc:
        return {"samples": len(calibration), "findings": [{"level": "warning", "code": "unusable", "message": exc.message,
                                                           "hint": exc.hint}]}
    histogram = record.get("classes", {}).get("calibration")
    findings = [*report.findings, *class_findings(histogram)]
    return report.model_copy(update={"class_histogram": histogram, "findings": findings}).model_dump(mode="json")
