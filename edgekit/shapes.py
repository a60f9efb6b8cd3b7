"""Fixed input shapes (``input_shapes=`` / ``--input-shape``) and state carrying (``states=`` / ``--state``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgekit.errors import InvalidOptionError, did_you_mean
from edgekit.specs import TensorSpec, shape_text


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=1,3,320,320`` -> ("NAME", (1, 3, 320, 320)); a scalar is ``NAME=``."""
    name, sep, dims = text.partition("=")
    if not sep or not name.strip():
        raise InvalidOptionError(f"--input-shape expects NAME=D1,D2,..., got '{text}'", "e.g. --input-shape image=1,3,320,320")
    try:
        shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise InvalidOptionError(f"--input-shape {name}: '{dims}' is not a list of integers", "e.g. image=1,3,320,320") from None
    return name.strip(), shape


def fix_shapes(input_shapes: Mapping[str, Sequence[int]] | None, inputs: tuple[TensorSpec, ...]) -> dict[str, tuple[int, ...]]:
    """Check ``input_shapes`` against the model's inputs: known names, same rank, positive sizes, static sizes kept."""
    fixed: dict[str, tuple[int, ...]] = {}
    specs = {spec.name: spec for spec in inputs}
    for name, dims in (input_shapes or {}).items():
        spec = specs.get(name)
        if spec is None:
            raise InvalidOptionError(
                f"input_shapes names an input '{name}' the model does not have",
                f"{did_you_mean(name, specs)}the model's inputs are: {', '.join(specs)}",
            )
        shape = tuple(int(d) for d in dims)
        if len(shape) != len(spec.shape) or any(d <= 0 for d in shape):
            raise InvalidOptionError(
                f"input_shapes['{name}'] = {shape} does not fit the input's shape {shape_text(spec.shape)}",
                f"give {len(spec.shape)} positive sizes",
            )
        clashes = [i for i, (want, have) in enumerate(zip(shape, spec.shape)) if have is not None and have != want]
        if clashes:
            raise InvalidOptionError(
                f"input_shapes['{name}'] = {shape} changes static dimension(s) {clashes} of {shape_text(spec.shape)}",
                "only dynamic dimensions (shown as ?) can be fixed",
            )
        fixed[name] = shape
    return fixed


def with_shapes(inputs: tuple[TensorSpec, ...], fixed: dict[str, tuple[int, ...]]) -> tuple[TensorSpec, ...]:
    """The input specs with the fixed shapes applied."""
    return tuple(spec.model_copy(update={"shape": fixed[spec.name]}) if spec.name in fixed else spec for spec in inputs)


def check_states(states: Mapping[str, str] | None, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> dict[str, str]:
    """Check a state map (state input name -> the output carried into it on the next step)."""
    in_specs, out_specs = {s.name: s for s in inputs}, {s.name: s for s in outputs}
    checked = {}
    for input_name, output_name in (states or {}).items():
        if input_name not in in_specs:
            raise InvalidOptionError(f"states names an input '{input_name}' the model does not have",
                                     f"{did_you_mean(input_name, in_specs)}inputs: {', '.join(in_specs)}")
        if output_name not in out_specs:
            raise InvalidOptionError(f"states names an output '{output_name}' the model does not have",
                                     f"{did_you_mean(output_name, out_specs)}outputs: {', '.join(out_specs)}")
        a, b = in_specs[input_name].shape, out_specs[output_name].shape
        if len(a) != len(b) or any(x is not None and y is not None and x != y for x, y in zip(a, b)):
            raise InvalidOptionError(f"state output '{output_name}' {shape_text(b)} cannot feed input '{input_name}' {shape_text(a)}",
                                     "pair each state input with the output of the same shape")
        checked[input_name] = output_name
    return checked
