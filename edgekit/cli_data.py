"""``edgekit data``: the calibration-data report, and the verdict options ``edgekit convert`` shares."""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from edgekit.errors import InvalidOptionError


def verdict_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--validate-on-calibration, --allow-inconclusive and --output-kind for a build command."""
    command = click.option("--output-kind", "output_kind", multiple=True, metavar="OUTPUT=KIND",
                           help="Declare what an output is (classifier, embedding, regression, detection, tensor): "
                                "it decides the metrics that judge it.")(command)
    command = click.option("--allow-inconclusive", is_flag=True,
                           help="Exit 0 when a verdict is inconclusive (its interval straddles the threshold).")(command)
    return click.option("--validate-on-calibration", is_flag=True,
                        help="Validate on the calibration data itself instead of holding part of it out (optimistic; "
                             "the verdict says so).")(command)


def verdict_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """The convert() keywords of :func:`verdict_options`' values."""
    return {"validate_on_calibration": values["validate_on_calibration"], "allow_inconclusive": values["allow_inconclusive"],
            "output_kinds": _pairs(values["output_kind"], "--output-kind") or None}


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InvalidOptionError(f"{option} expects OUTPUT=KIND, got '{item}'", f"e.g. {option} features=embedding")
        result[key.strip()] = value.strip()
    return result


def _range(text: str | None) -> Any:
    if not text:
        return None
    name, sep, values = text.rpartition("=") if "=" in text else ("", "", text)
    try:
        low, high = (float(v) for v in values.split(","))
    except ValueError:
        raise InvalidOptionError(f"--expected-range expects LOW,HIGH or INPUT=LOW,HIGH, got '{text}'",
                                 "e.g. --expected-range 0,1") from None
    return {name: (low, high)} if sep else (low, high)


@click.command(name="data")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--calibration", "-c", required=True, type=click.Path(exists=True), help="The calibration data to report on.")
@click.option("--validation", type=click.Path(exists=True),
              help="Data the model is known to work on: the reference for value ranges and activation coverage.")
@click.option("--expected-range", metavar="[INPUT=]LOW,HIGH", help="The value range the model expects, e.g. 0,1 or -1,1.")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2,...", help="Fix an input's dynamic dimensions.")
@click.option("--samples", type=int, default=300, show_default=True, help="Samples to read from each data set.")
@click.option("--allow-unsafe", is_flag=True, help="Load models that can run code. Only for files you trust.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_command(**options: Any) -> None:
    """Report on calibration data for MODEL before quantizing: duplicates, NaN/Inf, value ranges, class balance,
    and per-layer activation-range coverage. Problems are warnings with hints (exit 0); unusable data exits 2."""
    from edgekit.cli_errors import friendly_errors

    friendly_errors(_run)(**options)


def _run(model: str, calibration: str, validation: str | None, expected_range: str | None, input_shape: tuple[str, ...],
         samples: int, allow_unsafe: bool, as_json: bool) -> None:
    from edgekit import data_report, parse_shape
    from edgekit.data_console import print_data_report

    report = data_report(model, calibration, validation_data=validation, expected_range=_range(expected_range),
                         input_shapes=dict(map(parse_shape, input_shape)), samples=samples, allow_unsafe=allow_unsafe)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        print_data_report(report)
    sys.stdout.flush()
