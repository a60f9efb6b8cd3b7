"""Which samples validate a build: never the ones that calibrated it, unless the user asks.

Without ``validation_data``, a build that calibrates (int8) splits its calibration data: seeded, stratified
by the reference model's top-1 class for classifiers, contiguous (the tail) for sequences with ``states``,
random otherwise. The manifest records the indices and a sha256 of each part.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.data import Feed, load_feeds, synthetic_feeds
from edgekit.errors import DataError
from edgekit.specs import TensorSpec

VALIDATION_SHARE = 0.3
MIN_CALIBRATION = 16
MIN_VALIDATION = 16
SYNTHETIC_VALIDATION_SAMPLES = 16
SEED = 0


@dataclass(frozen=True)
class Holdout:
    """The calibration and validation feeds of a build and where the validation feeds came from."""

    calibration: list[Feed]
    validation: list[Feed]
    origin: str  # validation_data, held_out, calibration, synthetic
    on_calibration: bool = False
    record: dict[str, Any] = field(default_factory=dict)  # for the manifest


def feeds_digest(feeds: Sequence[Feed]) -> str:
    """sha256 over the feeds in order (input name, dtype, shape and bytes of every array)."""
    digest = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            array = np.ascontiguousarray(feed[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def choose(
    validation_data: Any, calibration: list[Feed], inputs: tuple[TensorSpec, ...], limit: int, *,
    calibrates: bool, sequence: bool, on_calibration: bool = False,
    classes: Callable[[list[Feed]], list[int] | None] | None = None, seed: int = SEED,
) -> Holdout:
    """The validation feeds of a build, and the calibration feeds left for quantization.

    ``calibrates``: some route quantizes with the calibration data (else it may validate freely on it).
    ``classes`` gives the reference model's top-1 class per feed (None for a model that is no classifier).
    """
    if validation_data is not None:
        validation = load_feeds(validation_data, inputs, what="validation", limit=limit)
        return Holdout(calibration, validation, "validation_data", record={"validation": _part(None, validation)})
    if not calibration:
        return Holdout([], synthetic_feeds(inputs, SYNTHETIC_VALIDATION_SAMPLES), "synthetic",
                       record={"validation": {"method": "synthetic (standard normal)", "count": SYNTHETIC_VALIDATION_SAMPLES}})
    if not calibrates or on_calibration:
        validation = calibration[:limit]
        record = {"method": "calibration data reused" + (" (asked for)" if on_calibration else " (no route calibrates)"),
                  "validation": _part(list(range(len(validation))), validation)}
        return Holdout(calibration, validation, "calibration", on_calibration=calibrates, record=record)
    return split(calibration, limit, sequence=sequence, classes=classes(calibration) if classes and not sequence else None,
                 seed=seed)


def split(feeds: list[Feed], limit: int, *, sequence: bool = False, classes: list[int] | None = None,
          seed: int = SEED) -> Holdout:
    """Hold out part of ``feeds`` for validation (see the module docstring); too few feeds is a DataError."""
    total = len(feeds)
    if total < MIN_CALIBRATION + MIN_VALIDATION:
        raise DataError(
            f"{total} calibration samples are too few to hold some out for validation: edgekit needs at least "
            f"{MIN_CALIBRATION + MIN_VALIDATION} ({MIN_CALIBRATION} to calibrate, {MIN_VALIDATION} to validate)",
            "give separate validation_data= / --validation, more calibration samples, or validate on the calibration "
            "data itself with validate_on_calibration=True / --validate-on-calibration (the verdict will say so)",
        )
    count = min(limit, max(MIN_VALIDATION, round(total * VALIDATION_SHARE)), total - MIN_CALIBRATION)
    if sequence:
        held, method = list(range(total - count, total)), "contiguous (the sequence's tail)"
    elif classes is not None:
        held = _stratified(np.asarray(classes), count, seed)
        method = f"stratified by the reference model's top-1 class (seed {seed})"
    else:
        held, method = sorted(np.random.default_rng(seed).choice(total, count, replace=False).tolist()), f"random (seed {seed})"
    chosen = set(held)
    kept = [i for i in range(total) if i not in chosen]
    calibration, validation = [feeds[i] for i in kept], [feeds[i] for i in held]
    record = {"method": method, "seed": seed, "calibration": _part(kept, calibration), "validation": _part(held, validation)}
    if classes is not None:
        record["classes"] = {"calibration": _histogram(classes, kept), "validation": _histogram(classes, held)}
    return Holdout(calibration, validation, "held_out", record=record)


def _stratified(classes: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` indices, each class represented in proportion to its share (largest remainders)."""
    rng = np.random.default_rng(seed)
    labels, sizes = np.unique(classes, return_counts=True)
    exact = sizes * count / len(classes)
    quota = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - quota), kind="stable")[: count - int(quota.sum())]:
        quota[index] += 1
    held = []
    for label, take in zip(labels, quota):
        members = np.flatnonzero(classes == label)
        held.extend(rng.choice(members, int(take), replace=False).tolist())
    return sorted(held)


def _histogram(classes: list[int], indices: list[int]) -> dict[str, int]:
    values, counts = np.unique(np.asarray(classes)[indices], return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def _part(indices: list[int] | None, feeds: list[Feed]) -> dict[str, Any]:
    part: dict[str, Any] = {"count": len(feeds), "sha256": feeds_digest(feeds)}
    if indices is not None:
        part["indices"] = indices
    return part
