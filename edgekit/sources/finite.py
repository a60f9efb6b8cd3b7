"""Refuse models whose weights are not finite: any artifact made from them is garbage."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgekit.errors import ModelFileError


def check_finite_weights(named: Iterable[tuple[str, str, np.ndarray]], where: str) -> None:
    """Raise ModelFileError naming the first (layer, weight) holding NaN or Inf.

    ``named`` yields ``(layer name, weight name, array)``; ``where`` names the model in the message.
    """
    for layer, weight, array in named:
        values = np.asarray(array)
        if values.dtype.kind not in "fc" or np.isfinite(values).all():
            continue
        kind = "NaN" if np.isnan(values).any() else "Inf"
        raise ModelFileError(
            f"{where}: weights contain {kind} in layer '{layer}' ({weight}, {int((~np.isfinite(values)).sum())} values)",
            "the model diverged in training or was saved damaged; retrain or restore a good checkpoint",
        )
