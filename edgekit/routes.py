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
from edgekit.registry import unique_table

if TYPE_CHECKING:
    import numpy as np

    from edgekit.options import QuantScheme
    from edgekit.sources.base import LoadedSource

ALL_PRECISIONS = ("fp32", "fp16", "int8")
#: the QuantScheme fields (edgekit.options) a route may honour for int8
SCHEME_FIELDS = frozenset({"per_channel", "symmetric_weights", "symmetric_activations", "io_dtype", "activations",
                           "calibration_method", "bias_correction", "smooth_quant", "weight_range"})


@dataclass(frozen=True)
class Route:
    """A converter module and what it declares it supports (checked by the build plan before any work)."""

    module: str
    precisions: tuple[str, ...] = ALL_PRECISIONS
    extra: str | None = None  # the pip extra a route needs beyond the base install
    scheme_fields: frozenset[str] = SCHEME_FIELDS  # int8 scheme fields honoured; a non-default value of another is refused
    static_shapes: bool = False  # the converter needs every input dimension fixed
    requires: tuple[str, ...] = ()  # import names the converter needs (checked with find_spec before any work)

    @property
    def name(self) -> str:
        return self.module.rsplit(".", 1)[-1]

    @property
    def install(self) -> str:
        """The pip line that brings what this route needs."""
        from edgekit.dependencies import install_line

        return install_line(self.extra or "convert")

    def require(self, framework: str, fmt: str) -> None:
        """Raise ``MissingDependencyError`` naming the first module of ``requires`` that is not installed."""
        from edgekit.dependencies import require

        require(self.requires, self.install, f"converting {framework} to {fmt}")

    def load(self) -> Callable[[RouteRequest], RouteOutput]:
        return importlib.import_module(self.module).convert


def build_table(entries: list[tuple[tuple[str, str], Route]]) -> dict[tuple[str, str], Route]:
    """The route table from (framework, format) entries; a key given twice is an error."""
    return unique_table(entries, lambda key: f"route {key[0]}->{key[1]}")


_C = "edgekit.converters."
_TFLITE_PRECISIONS = (*ALL_PRECISIONS, "dynamic")
# what loading the source, converting and validating the artifact import, per framework and per format
_LOAD = {"keras2": ("tensorflow", "tf_keras"), "keras3": ("tensorflow", "keras"), "torch": ("torch",), "onnx": ("onnx",)}
_MAKE = {"tflite": ("ai_edge_litert",), "onnx": ("onnx", "onnxruntime"), "openvino": ("openvino",),
         "executorch": ("executorch", "torchao")}


def _needs(framework: str, fmt: str, *more: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*_LOAD[framework], *more, *_MAKE[fmt])))


# The QuantScheme fields each converter family really passes to its quantizer (read from the converters):
#: TFLiteConverter: per-channel or per-tensor weights, int8/uint8 I/O types, int16x8 activations; its weights
#: are always symmetric, int8 activations always asymmetric, and it calibrates with min/max only.
_TFLITE_FIELDS = frozenset({"per_channel", "io_dtype", "activations"})
#: litert-torch's PT2E quantizer: symmetric int8 weights per channel or tensor, asymmetric int8 activations
#: from a histogram observer, and int8 input/output whatever was asked.
_LITERT_TORCH_FIELDS = frozenset({"per_channel"})
#: ONNX Runtime quantize_static (QDQ): every field except io_dtype (the model keeps float input/output) and
#: NNCF's bias correction and SmoothQuant.
_ORT_FIELDS = SCHEME_FIELDS - {"io_dtype", "bias_correction", "smooth_quant"}
#: NNCF on OpenVINO: int8 activations only, float input/output.
_NNCF_FIELDS = SCHEME_FIELDS - {"io_dtype", "activations"}
ROUTES: dict[tuple[str, str], Route] = build_table([
    (("keras2", "tflite"), Route(_C + "keras_tflite", _TFLITE_PRECISIONS, scheme_fields=_TFLITE_FIELDS,
                                 requires=_needs("keras2", "tflite"))),
    (("keras2", "onnx"), Route(_C + "keras_onnx", scheme_fields=_ORT_FIELDS, requires=_needs("keras2", "onnx", "tf2onnx"))),
    (("keras2", "openvino"), Route(_C + "keras_openvino", scheme_fields=_NNCF_FIELDS, requires=_needs("keras2", "openvino"))),
    (("keras3", "tflite"), Route(_C + "keras_tflite", _TFLITE_PRECISIONS, scheme_fields=_TFLITE_FIELDS,
                                 requires=_needs("keras3", "tflite"))),
    (("keras3", "onnx"), Route(_C + "keras_onnx", scheme_fields=_ORT_FIELDS, requires=_needs("keras3", "onnx", "tf2onnx"))),
    (("keras3", "openvino"), Route(_C + "keras_openvino", scheme_fields=_NNCF_FIELDS, requires=_needs("keras3", "openvino"))),
    (("torch", "onnx"), Route(_C + "torch_onnx", scheme_fields=_ORT_FIELDS, requires=_needs("torch", "onnx", "onnxscript"))),
    (("torch", "openvino"), Route(_C + "torch_openvino", scheme_fields=_NNCF_FIELDS, requires=_needs("torch", "openvino"))),
    (("torch", "tflite"), Route(_C + "torch_tflite", _TFLITE_PRECISIONS, extra="litert-torch", scheme_fields=_LITERT_TORCH_FIELDS,
                                static_shapes=True, requires=_needs("torch", "tflite", "litert_torch"))),
    (("torch", "executorch"), Route(_C + "torch_executorch", ("fp32", "int8"), extra="executorch",
                                    scheme_fields=frozenset({"per_channel"}), static_shapes=True,
                                    requires=_needs("torch", "executorch"))),
    (("onnx", "onnx"), Route(_C + "onnx_onnx", scheme_fields=_ORT_FIELDS, requires=_needs("onnx", "onnx"))),
    (("onnx", "openvino"), Route(_C + "onnx_openvino", scheme_fields=_NNCF_FIELDS, requires=_needs("onnx", "openvino"))),
    (("onnx", "executorch"), Route(_C + "onnx_executorch", ("fp32", "int8"), extra="executorch",
                                   scheme_fields=frozenset({"per_channel"}), static_shapes=True,
                                   requires=_needs("onnx", "executorch", "torch"))),
    (("onnx", "tflite"), Route(_C + "onnx_tflite", _TFLITE_PRECISIONS, extra="litert-torch", scheme_fields=_LITERT_TORCH_FIELDS,
                               static_shapes=True, requires=_needs("onnx", "tflite", "torch", "litert_torch"))),
])


def find_route(framework: str, fmt: str, precision: str) -> Route:
    """The route for ``framework`` to ``fmt`` at ``precision``, or a clear error naming the ones that exist;
    a package the route needs that is not installed is a ``MissingDependencyError`` with its install line."""
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
    route.require(framework, fmt)
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
    fallbacks: list[Any] = field(default_factory=list)  # QuantizerFallback records of nodes quantized otherwise

    @property
    def files(self) -> list[Path]:
        return [*self.companions, self.path]
