"""What kind of output a tensor is, which decides the metrics that judge it.

A declared kind (``output_kinds={"name": "embedding"}`` / ``--output-kind name=embedding``) always wins.
Otherwise the guess reads the output's shape and the reference model's values on the validation data:

* rows that are probabilities (non-negative, summing to 1) or log-probabilities -> ``classifier``
* rows of unit L2 norm -> ``embedding``
* logits: a source whose head looks like a classifier (``ModelSource.task``) with 4 to 1000 signed
  values per row -> ``classifier``
* 16 or more values per row otherwise (pooled features, an un-normalised embedding) -> ``embedding``
* fewer than 16 values per row -> ``regression``
* a rank-3 output with 4 to 7 values per row, or named like boxes -> ``detection``; anything else ``tensor``.

Three logits without a softmax look exactly like three regression scores: declare them.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgekit.errors import InvalidOptionError, did_you_mean
from edgekit.specs import OUTPUT_KINDS, TensorSpec

_BOX_WORDS = ("box", "bbox", "detection", "anchor")
MAX_LOGITS = 1000
MIN_EMBEDDING = 16


def check_declared(declared: Mapping[str, str] | None, outputs: tuple[TensorSpec, ...]) -> dict[str, str]:
    """The user's output kinds, checked against the model's output names and the known kinds."""
    result = dict(declared or {})
    names = [spec.name for spec in outputs]
    for name, kind in result.items():
        if name not in names:
            raise InvalidOptionError(f"output_kinds names an output '{name}' the model does not have",
                                     f"{did_you_mean(name, names)}the outputs are: {', '.join(names)}")
        if kind not in OUTPUT_KINDS:
            raise InvalidOptionError(f"unknown output kind '{kind}' for '{name}'",
                                     f"{did_you_mean(kind, OUTPUT_KINDS)}choose from: {', '.join(OUTPUT_KINDS)}")
    return result


def guess_kind(spec: TensorSpec, task: str, reference: list[np.ndarray]) -> str:
    """The kind of output ``spec`` from its shape, the source's task and the reference values (see module doc)."""
    if not reference:
        return "tensor"
    first = np.asarray(reference[0])
    rank = max(len(spec.shape), first.ndim)
    width = first.shape[-1] if first.ndim else 1
    if any(word in spec.name.lower() for word in _BOX_WORDS) or (rank == 3 and 4 <= width <= 7):
        return "detection"
    if rank > 2 or not np.issubdtype(first.dtype, np.floating):
        return "tensor"
    rows = np.concatenate([np.reshape(np.asarray(r, dtype=np.float64), (-1, width)) for r in reference])
    if width >= 2 and _probabilities(rows):
        return "classifier"
    if width >= 2 and np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-3):
        return "embedding"
    if task == "classifier" and 4 <= width <= MAX_LOGITS and not (width >= 64 and rows.min() >= 0):
        return "classifier"
    return "embedding" if width >= MIN_EMBEDDING else "regression"


def _probabilities(rows: np.ndarray) -> bool:
    if rows.min() >= -1e-6 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
        return True
    if rows.max() <= 1e-6:  # log-softmax
        return bool(np.allclose(np.log(np.exp(rows).sum(axis=1)), 0.0, atol=1e-3))
    return False
