"""What is wrong with a calibration set, found before quantizing: the checks and the report they make.

The checks that need no model live here (counts, shapes, duplicates, NaN/Inf, value ranges); the model's
part (predicted classes, activation coverage) is measured where the model is loaded and merged in.

Expected value range of an input, in this order: the range the user declares (``expected_range``); the
observed range of reference data the model is known to take (validation or training data) when given;
otherwise a heuristic: a float input whose values are integers in 0..255 with a maximum above 2 looks like
raw pixels, which most image models (trained on [0, 1] or [-1, 1]) do not expect unless their first layer
rescales (a Keras ``Rescaling`` layer, an ONNX ``Div`` by 255 on the input: see
:func:`edgekit.activations.first_layer_rescaling`), in which case 0..255 is what they expect.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgekit.data import Feed
from edgekit.errors import DataError

#: a calibration set whose reference predictions are this much one class is flagged
ONE_CLASS_SHARE = 0.9
#: two samples closer than this (L2 distance over the set's mean norm) are near duplicates
NEAR_DUPLICATE_DISTANCE = 1e-3
#: a layer whose calibration range covers less than this of the validation range is flagged
MIN_COVERAGE = 0.9
#: factor between the calibration range and the reference range beyond which they are said not to match
RANGE_FACTOR = 4.0


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataFinding(_Model):
    """One problem (or note) about the data, with the way out."""

    level: Literal["warning", "info"] = "warning"
    code: str  # duplicates, near_duplicates, non_finite, range, one_class, coverage, few_samples
    message: str
    hint: str = ""


class InputSummary(_Model):
    name: str
    samples: int
    shape: tuple[int, ...]
    dtype: str
    minimum: float
    maximum: float
    mean: float
    non_finite_samples: int = 0
    expected_range: tuple[float, float] | None = None
    expected_from: str | None = None  # declared, reference data, heuristic


class LayerCoverage(_Model):
    """How much of a layer's validation activation range the calibration range covers."""

    layer: str
    calibration_range: tuple[float, float]
    validation_range: tuple[float, float]
    coverage: float  # share of the validation [min, max] inside the calibration [min, max]
    clipped: float  # share of validation activations outside the calibration range


class DataReport(_Model):
    """``edgekit.data_report``'s answer; its summary is also in every build manifest."""

    samples: int
    inputs: list[InputSummary]
    exact_duplicates: int = 0  # samples identical to an earlier one
    near_duplicates: int = 0  # samples nearly identical to an earlier one (and not exact)
    class_histogram: dict[str, int] | None = None  # the reference model's top-1 class on the calibration data
    validation_samples: int = 0
    coverage: list[LayerCoverage] = Field(default_factory=list)  # worst first
    findings: list[DataFinding] = Field(default_factory=list)

    @property
    def warnings(self) -> list[DataFinding]:
        return [f for f in self.findings if f.level == "warning"]


def finite_rows(feeds: Sequence[Feed]) -> list[bool]:
    """Per feed: every float value is finite."""
    return [all(not np.issubdtype(np.asarray(v).dtype, np.floating) or bool(np.all(np.isfinite(v))) for v in feed.values())
            for feed in feeds]


def summarize(feeds: Sequence[Feed], expected: dict[str, tuple[tuple[float, float], str]] | None = None) -> DataReport:
    """The model-free part of the report: counts, shapes, duplicates, NaN/Inf and value ranges."""
    if not feeds:
        raise DataError("the calibration data is empty", "give at least one sample per input")
    finite = finite_rows(feeds)
    if not any(finite):
        raise DataError(f"every one of the {len(feeds)} calibration samples contains NaN or Inf",
                        "the data is unusable: check how it was produced (a division by zero, an unread file)")
    good = [feed for feed, ok in zip(feeds, finite) if ok]
    findings: list[DataFinding] = []
    if len(good) < len(feeds):
        findings.append(DataFinding(code="non_finite",
                                    message=f"{len(feeds) - len(good)} of {len(feeds)} samples contain NaN or Inf",
                                    hint="drop or repair those samples: a quantizer calibrated on them gets no usable range"))
    exact, near = _duplicates(good)
    if exact + 1 >= len(good) and len(good) > 1:
        raise DataError(f"all {len(good)} usable calibration samples are identical",
                        "the data is unusable for calibration: give real, varied samples from the deployment domain")
    if exact:
        findings.append(DataFinding(code="duplicates", message=f"{exact} samples are exact duplicates of others",
                                    hint="remove duplicates: they weigh some inputs more and shrink the real sample count"))
    if near:
        findings.append(DataFinding(code="near_duplicates", message=f"{near} samples are near duplicates of others",
                                    hint="consecutive video frames or augmentations of one image calibrate like one sample"))
    inputs = [_input_summary(name, feeds, good, finite, (expected or {}).get(name)) for name in feeds[0]]
    findings.extend(f for summary in inputs for f in _range_findings(summary))
    return DataReport(samples=len(feeds), inputs=inputs, exact_duplicates=exact, near_duplicates=near, findings=findings)


def _input_summary(name: str, feeds: Sequence[Feed], good: list[Feed], finite: list[bool],
                   expected: tuple[tuple[float, float], str] | None) -> InputSummary:
    values = np.concatenate([np.asarray(feed[name], dtype=np.float64).ravel() for feed in good])
    bad = sum(1 for feed, ok in zip(feeds, finite)
              if not ok and not np.all(np.isfinite(np.asarray(feed[name], dtype=np.float64))))
    first = np.asarray(feeds[0][name])
    if expected is None:
        expected = _heuristic_range(values, first.dtype)
    return InputSummary(
        name=name, samples=len(feeds), shape=tuple(int(d) for d in first.shape), dtype=str(first.dtype),
        minimum=float(values.min()), maximum=float(values.max()), mean=float(values.mean()), non_finite_samples=bad,
        expected_range=expected[0] if expected else None, expected_from=expected[1] if expected else None,
    )


def _heuristic_range(values: np.ndarray, dtype: np.dtype) -> tuple[tuple[float, float], str] | None:
    """Raw 0..255 pixels fed to a float input: most models expect [0, 1] or [-1, 1]."""
    if not np.issubdtype(dtype, np.floating) or values.max() <= 2.0 or values.min() < 0 or values.max() > 255:
        return None
    sample = values[: 100_000]
    if np.allclose(sample, np.round(sample)):
        return (0.0, 1.0), "heuristic: integer values up to 255 in a float input look like raw pixels"
    return None


def _range_findings(summary: InputSummary) -> list[DataFinding]:
    if summary.expected_range is None:
        return []
    low, high = summary.expected_range
    span = max(high - low, 1e-12)
    data_span = summary.maximum - summary.minimum
    outside = summary.minimum < low - span / RANGE_FACTOR or summary.maximum > high + span / RANGE_FACTOR
    if not outside and data_span * RANGE_FACTOR >= span:
        return []
    return [DataFinding(
        code="range",
        message=f"input '{summary.name}' ranges over [{summary.minimum:.4g}, {summary.maximum:.4g}] but the model expects "
                f"about [{low:.4g}, {high:.4g}] ({summary.expected_from})",
        hint="scale the calibration data exactly as the model's training data was scaled "
             "(e.g. x / 255 for [0, 1], x / 127.5 - 1 for [-1, 1]); "
             "declare the range with expected_range= if edgekit guessed wrong",
    )]


def _duplicates(feeds: Sequence[Feed]) -> tuple[int, int]:
    import hashlib

    rows = [np.concatenate([np.asarray(v, dtype=np.float64).ravel() for _, v in sorted(feed.items())]) for feed in feeds]
    digests = [hashlib.sha256(row.tobytes()).hexdigest() for row in rows]
    exact = len(digests) - len(set(digests))
    unique = [rows[i] for i, d in enumerate(digests) if d not in digests[:i]]
    if len(unique) < 2 or len(unique) > 4000:
        return exact, 0
    matrix = np.stack(unique)[:, :4096]
    scale = max(float(np.linalg.norm(matrix, axis=1).mean()), 1e-12)
    squared = (matrix ** 2).sum(axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * matrix @ matrix.T, 0.0)) / scale
    np.fill_diagonal(distances, np.inf)
    near = int(np.sum(np.triu(distances < NEAR_DUPLICATE_DISTANCE, 1).any(axis=0)))
    return exact, near


def class_findings(histogram: dict[str, int] | None) -> list[DataFinding]:
    """A calibration set that the reference model sees as (nearly) one class."""
    if not histogram:
        return []
    total = sum(histogram.values())
    top, count = max(histogram.items(), key=lambda item: item[1])
    if total and count / total >= ONE_CLASS_SHARE:
        message = f"{count / total:.0%} of the calibration samples are predicted as class {top} ({len(histogram)} classes seen)"
        return [DataFinding(code="one_class", message=message,
                            hint="calibrate on samples of every class the model meets in use: "
                                 "ranges from one class clip the others")]
    return []


def coverage_findings(rows: list[LayerCoverage], limit: int = 5) -> list[DataFinding]:
    """Layers whose calibration range leaves much of the validation range uncovered."""
    bad = [r for r in rows if r.coverage < MIN_COVERAGE]
    if not bad:
        return []
    names = ", ".join(f"{r.layer} ({r.coverage:.0%} covered, {r.clipped:.2%} clipped)" for r in bad[:limit])
    return [DataFinding(code="coverage", message=f"{len(bad)} layers see activations on validation data beyond their "
                                                 f"calibration range: {names}",
                        hint="add calibration samples like the validation data (more, and more varied), "
                             "or use a percentile calibration method")]
