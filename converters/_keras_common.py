"""What the three Keras routes share: the input signature and a serving function with named outputs."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.sources.keras import output_values

if TYPE_CHECKING:
    from edgekit.routes import RouteRequest


def input_shapes(request: RouteRequest, batch: int | None = None) -> dict[str, tuple[int | None, ...]]:
    """Each input's shape, with ``request.static_shapes`` (if any) fixing dynamic dimensions.

    ``batch`` fixes a dynamic batch dimension left after that.
    """
    shapes = {}
    for spec in request.source.spec.inputs:
        fixed = request.static_shapes.get(spec.name)
        shape = tuple(fixed) if fixed else spec.shape
        if batch is not None and shape and shape[0] is None:
            shape = (batch, *shape[1:])
        shapes[spec.name] = shape
    return shapes


def input_signature(request: RouteRequest, batch: int | None = None) -> list[Any]:
    """One ``tf.TensorSpec`` per source input, named after it, in the source's input order."""
    import tensorflow as tf

    shapes = input_shapes(request, batch)
    return [tf.TensorSpec(shapes[s.name], tf.dtypes.as_dtype(s.dtype), name=s.name) for s in request.source.spec.inputs]


def serving_function(request: RouteRequest) -> Callable:
    """The model in inference mode as a function of its named inputs returning ``{output name: tensor}``."""
    source = request.source
    model, out_names = source.model, source.output_names

    def serve(*tensors: Any) -> dict[str, Any]:
        result = model(tensors[0] if len(tensors) == 1 else list(tensors), training=False)
        return dict(zip(out_names, output_values(result, out_names), strict=True))

    return serve


def tf_function(request: RouteRequest, batch: int | None = None) -> Any:
    """:func:`serving_function` traced as a ``tf.function`` with the named input signature."""
    import tensorflow as tf

    return tf.function(serving_function(request), input_signature=input_signature(request, batch), autograph=False)


def warm_up(request: RouteRequest) -> None:
    """Run the model once (Keras 3 models must have been called before they are exported)."""
    feed = request.calibration[0] if request.calibration else example_feed(request)
    request.source.predict(feed)


def example_feed(request: RouteRequest) -> dict[str, np.ndarray]:
    """Zeros of every input's shape, dynamic dimensions set to 1."""
    return {
        spec.name: np.zeros(tuple(1 if d is None else d for d in input_shapes(request)[spec.name]), dtype=spec.dtype)
        for spec in request.source.spec.inputs
    }


@contextlib.contextmanager
def conversion_step(what: str, hint: str) -> Iterator[None]:
    """Turn any framework exception raised inside into a ConversionError naming ``what`` failed."""
    try:
        yield
    except EdgekitError:
        raise
    except Exception as exc:
        raise ConversionError(f"{what} failed: {type(exc).__name__}: {first_line(exc)}", hint) from exc

