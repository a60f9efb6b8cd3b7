"""The route table: the one place that knows which (framework, format) conversions exist.

A route is a module under ``edgekit.converters`` with a ``convert(request) -> RouteOutput``
function. Adding a route is one module plus one line in ``ROUTES``.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import UnsupportedRouteError

if TYPE_CHECKING:
    import numpy as np

    from edgekit.options import QuantScheme
    from edgekit.sources.base import LoadedSource

ALL_PRECISIONS = ("fp32", "fp16", "int8")
#: the QuantScheme fields (edgekit.options) a route may honour for int8
SCHEME_FIELDS = frozenset({"per_channel", "symmetric_weights", "symmetric_activations", "io_dtype", "activations",
                           "calibration_method"})


@dataclass(frozen=True)
class Route:
    """A converter module and what it declares it supports (checked by the build plan before any work)."""

    module: str
    precisions: tuple[str, ...] = ALL_PRECISIONS
    extra: str | None = None  # the pip extra a route needs beyond the base install
    scheme_fields: frozenset[str] = SCHEME_FIELDS  # scheme fields honoured; a non-default value of another is refused
    static_shapes: bool = False  # the converter needs every input dimension fixed
    requires: tuple[str, ...] = ()  # import names the converter needs (checked with find_spec before any work)

    @property
    def name(self) -> str:
        return self.module.rsplit(".", 1)[-1]

    def load(self) -> Callable[[RouteRequest], RouteOutput]:
        return importlib.import_module(self.module).convert


def build_table(entries: list[tuple[tuple[str, str], Route]]) -> dict[tuple[str, str], Route]:
    """The route table from (framework, format) entries; a key given twice is an error."""
    table: dict[tuple[str, str], Route] = {}
    for key, route in entries:
        if key in table:
            raise ValueError(f"route {key[0]}->{key[1]} is registered twice")
        table[key] = route
    return table


_C = "edgekit.converters."
_TFLITE_PRECISIONS = (*ALL_PRECISIONS, "dynamic")
ROUTES: dict[tuple[str, str], Route] = build_table([
    (("keras2", "tflite"), Route(_C + "keras_tflite", _TFLITE_PRECISIONS)),
    (("keras2", "onnx"), Route(_C + "keras_onnx")),
    (("keras2", "openvino"), Route(_C + "keras_openvino")),
    (("keras3", "tflite"), Route(_C + "keras_tflite", _TFLITE_PRECISIONS)),
    (("keras3", "onnx"), Route(_C + "keras_onnx")),
    (("keras3", "openvino"), Route(_C + "keras_openvino")),
    (("torch", "onnx"), Route(_C + "torch_onnx")),
    (("torch", "openvino"), Route(_C + "torch_openvino")),
    (("torch", "tflite"), Route(_C + "torch_tflite", _TFLITE_PRECISIONS, extra="litert-torch")),
    (("onnx", "onnx"), Route(_C + "onnx_onnx")),
    (("onnx", "openvino"), Route(_C + "onnx_openvino")),
    (("onnx", "tflite"), Route(_C + "onnx_tflite", _TFLITE_PRECISIONS, extra="litert-torch", static_shapes=True,
                               requires=("torch", "litert_torch", "ai_edge_litert"))),
])


def find_route(framework: str, fmt: str, precision: str) -> Route:
    """The route for ``framework`` to ``fmt`` at ``precision``, or a clear error naming the ones that exist."""
    route = ROUTES.get((framework, fmt))
    if route is None:
        existing = ", ".join(f"{f}->{t}" for f, t in ROUTES)
        from_here = [t for f, t in ROUTES if f == framework]
        raise UnsupportedRouteError(
            f"no converter from {framework} to {fmt}",
            f"{framework} models convert to: {', '.join(from_here) or 'nothing'}; all routes: {existing}",
        )
    if precision not in route.precisions:
        raise UnsupportedRouteError(
            f"the {framework}->{fmt} route does not support precision {precision}",
            f"choose one of: {', '.join(route.precisions)}",
        )
    return route


@dataclass(frozen=True)
class RouteRequest:
    """Everything a converter needs: the loaded source, precision, scheme and calibration feeds."""

    source: LoadedSource
    precision: str
    scheme: QuantScheme
    calibration: list[dict[str, np.ndarray]]
    out_dir: Path
    stem: str
    static_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    progress: Callable[[float, str], None] = lambda fraction, message: None
    float_layers: tuple[str, ...] = ()  # int8: layers (names in the converted graph) kept in float
    layout: str | None = None  # "NHWC": a tflite artifact takes and gives its rank-4 NCHW tensors as NHWC

    @property
    def base_path(self) -> Path:
        return self.out_dir / self.stem


@dataclass
class RouteOutput:
    """What a converter wrote: the main file, its companions, and notes for the manifest."""

    path: Path
    companions: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inputs: tuple[Any, ...] | None = None  # TensorSpecs of the artifact if they differ from the source
    outputs: tuple[Any, ...] | None = None
    output_map: dict[str, str] = field(default_factory=dict)  # source output name -> artifact output name

    @property
    def files(self) -> list[Path]:
        return [*self.companions, self.path]
