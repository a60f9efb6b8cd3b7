"""Inputs fixed to constants (``input_values``): the source the routes convert has them folded in.

The folded model is what every route converts; the reference outputs still come from the model as it
was loaded, fed the fixed values, so validation measures the folding too.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError
from edgekit.sources.base import LoadedSource
from edgekit.sources.onnx import OnnxSource


class FoldedOnnxSource(OnnxSource):
    """An ONNX source with some inputs folded into the graph; ``predict`` runs the original model."""

    def __init__(self, folded: OnnxSource, reference: LoadedSource, values: dict[str, np.ndarray]) -> None:
        spec = folded.spec.model_copy(update={"kind": reference.spec.kind, "sha256": reference.spec.sha256,
                                              "size_bytes": reference.spec.size_bytes})
        super().__init__(spec, folded.model, folded.session)
        self.reference = reference
        self.values = values

    def predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.reference.predict({**feed, **self.values})


def fold_source(source: LoadedSource, values: Mapping[str, Any],
                static_shapes: Mapping[str, tuple[int, ...]]) -> tuple[LoadedSource, list[str]]:
    """``source`` with the inputs of ``values`` folded in, and notes saying what was folded."""
    from edgekit.sources import onnx as onnx_sources
    from edgekit.sources.onnx_fold import fold_inputs

    if source.framework != "onnx":
        raise InvalidOptionError(
            f"input_values folds inputs of ONNX models; this is a {source.framework} model",
            "export the model with the value fixed in the code (a Python constant), or export it to ONNX first",
        )
    reference = source.reference if isinstance(source, FoldedOnnxSource) else source
    folded, notes = fold_inputs(source.model, values, static_shapes)
    loaded = onnx_sources.from_object(folded, "onnx")
    specs = {spec.name: spec for spec in source.spec.inputs}
    arrays = {name: np.asarray(value, dtype=specs[name].dtype).reshape(
        [d or 1 for d in specs[name].shape]) for name, value in values.items()}
    return FoldedOnnxSource(loaded, reference, arrays), notes


def without_fixed(data: Any, names: set[str]) -> Any:
    """In-memory feeds (a dict of arrays or an iterable of dicts) without the fixed inputs' entries."""
    if not names or data is None or isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return data
    if isinstance(data, Mapping):
        return {key: value for key, value in data.items() if key not in names}
    if isinstance(data, (list, tuple)):
        return [{k: v for k, v in feed.items() if k not in names} if isinstance(feed, Mapping) else feed for feed in data]
    return data
