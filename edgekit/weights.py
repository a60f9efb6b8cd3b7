"""How much of an artifact's weights is really stored as 8-bit integers, read from the file itself.

``quantized_weight_fraction(path, fmt)`` counts weight parameters (constant tensors with more than one
element: filters, matrices, biases, per-channel scales) by their stored type, with the format package's
``weight_counts``, and returns the fraction held as int8/uint8. Integer shape constants (int32/int64) are
not weights and are not counted.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

INT8 = {"int8", "uint8"}
FLOATS = {"float32", "float16", "bfloat16", "float64"}


def weight_counts(path: str | Path, fmt: str) -> Counter:
    """Number of weight parameters per stored type (``"int8"``, ``"float32"``, ...) in one artifact."""
    from edgekit.formats import get_format

    return get_format(fmt).member("weight_counts")(Path(path))


def quantized_weight_fraction(path: str | Path, fmt: str) -> float:
    """Fraction of the weight parameters of an artifact stored as int8/uint8 (0.0 when it has none)."""
    counts = weight_counts(path, fmt)
    weights = sum(n for kind, n in counts.items() if kind in INT8 | FLOATS)
    return sum(counts[kind] for kind in INT8) / weights if weights else 0.0
