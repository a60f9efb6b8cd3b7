"""The ``edgekit`` command line: a thin layer over the public API.

User errors print a message and a hint (no traceback) and exit 2; a failed validation gate exits 1.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from edgekit._version import __version__
from edgekit.errors import EdgekitError, InvalidOptionError

EXIT_GATE_FAILED = 1


def _pairs(values: tuple[str, ...], option: str, cast: Callable[[str], Any] = str) -> dict[str, Any]:
    """Parse repeated KEY=VALUE options."""
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidOptionError(f"{option} expects KEY=VALUE, got '{item}'", f"e.g. {option} cosine=0.99")
        try:
            result[key.strip()] = cast(value.strip())
        except ValueError:
            raise InvalidOptionError(f"{option} {key}: '{value}' is not a valid value", "give a number") from None
    return result


def _parse_scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn EdgekitError into 'error:/hint:' lines and the error's exit code; Ctrl-C into exit 130."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EdgekitError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("cancelled: nothing half-written was kept", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
def main() -> None:
    """Convert Keras, PyTorch and ONNX models to TFLite, ONNX and OpenVINO, validated against the source."""


@main.command()
@click.argument("model", type=click.Path(path_type=str))
@click.option("--target", "-t", default="cpu-x86", show_default=True, help="Device profile name or .yaml file.")
@click.option("--format", "-f", "formats", multiple=True, help="tflite, onnx or openvino (repeatable; default: the target's).")
@click.option("--precision", "-p", "precisions", multiple=True, help="fp32, fp16, int8 or dynamic (repeatable; default: the target's).")
@click.option("--calibration", "-c", type=click.Path(exists=True), help="Calibration data: .npy, .npz (by input name) or an image folder.")
@click.option("--validation", type=click.Path(exists=True), help="Validation data (default: the calibration data, else random inputs).")
@click.option("--out", "-o", "output_dir", default="build/edgekit", show_default=True, help="Output folder.")
@click.option("--name", help="Base name of the artifact files (default: the model file's name).")
@click.option("--tolerance", multiple=True, metavar="METRIC=VALUE", help="Override a validation threshold: cosine=0.999, top1_agreement=0.97.")
@click.option("--quant", multiple=True, metavar="KEY=VALUE", help="Override the profile's quantization scheme, e.g. per_channel=false, io_dtype=int8.")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2,...",
              help="Fix an input's dynamic dimensions, e.g. image=1,3,320,320 (repeatable).")
@click.option("--state", multiple=True, metavar="INPUT=OUTPUT",
              help="A state input and the output carried into it: validation runs the data as one sequence (repeatable).")
@click.option("--allow-unsafe", is_flag=True, help="Load models that can run code (Keras Lambda layers, TorchScript). Only for files you trust.")
@click.option("--timeout", type=float, help="Seconds after which one conversion step is stopped.")
@click.option("--json", "as_json", is_flag=True, help="Print the build as JSON instead of a table.")
@friendly_errors
def convert(model: str, target: str, formats: tuple[str, ...], precisions: tuple[str, ...], calibration: str | None,
            validation: str | None, output_dir: str, name: str | None, tolerance: tuple[str, ...], quant: tuple[str, ...],
            input_shape: tuple[str, ...], state: tuple[str, ...], allow_unsafe: bool, timeout: float | None,
            as_json: bool) -> None:
    """Convert MODEL for a target device, validate every artifact and write edgekit-manifest.json."""
    from edgekit.console import print_build, progress_bar
    from edgekit.pipeline import convert as run_convert
    from edgekit.shapes import parse_shape

    with progress_bar() as on_progress:
        build = run_convert(
            model, target=target, formats=formats or None, precision=precisions or None, calibration_data=calibration,
            validation_data=validation, output_dir=output_dir, name=name, tolerances=_pairs(tolerance, "--tolerance", float),
            quantization=_pairs(quant, "--quant", _parse_scalar), input_shapes=dict(map(parse_shape, input_shape)),
            states=_pairs(state, "--state"), allow_unsafe=allow_unsafe, timeout=timeout,
            progress=on_progress,
        )
    if as_json:
        click.echo(build.model_dump_json(indent=2))
    else:
        print_build(build)
    if not build.passed:
        sys.exit(EXIT_GATE_FAILED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print name, device class, formats and precision per profile as JSON.")
@click.option("--show", metavar="NAME_OR_FILE", help="Print one profile after validating it.")
@friendly_errors
def targets(as_json: bool, show: str | None) -> None:
    """List the device profiles (targets) edgekit can build for."""
    from edgekit.console import print_targets
    from edgekit.profiles import list_profiles, load_profile

    if show:
        click.echo(json.dumps(load_profile(show).model_dump(mode="json"), indent=2))
        return
    profiles = list_profiles()
    if as_json:
        rows = [{"name": p.name, "device_class": p.device_class, "formats": list(p.formats), "precision": p.precision,
                 "description": p.description} for p in profiles]
        click.echo(json.dumps(rows, indent=2))
    else:
        print_targets(profiles)


@main.command(name="inspect")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--allow-unsafe", is_flag=True, help="Load models that can run code. Only for files you trust.")
@click.option("--json", "as_json", is_flag=True, help="Print the model's spec as JSON.")
@friendly_errors
def inspect_command(model: str, allow_unsafe: bool, as_json: bool) -> None:
    """Show a model's framework, inputs and outputs (name, shape, dtype, layout) and hash."""
    from edgekit.console import print_source
    from edgekit.inspection import inspect

    source = inspect(model, allow_unsafe=allow_unsafe)
    if as_json:
        click.echo(source.model_dump_json(indent=2))
    else:
        print_source(source)


if __name__ == "__main__":
    main()
