"""``edgekit inspect PATH``: a model (framework, I/O, hash, loaded the safe way) or an artifact (format, I/O with
dtype and quantization, stored precision, manifest entry and deployment contract)."""
from __future__ import annotations

import click

from edgekit.cli_errors import friendly_errors


@click.command(name="inspect")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--allow-unsafe", is_flag=True, help="Load models that can run code. Only for files you trust.")
@click.option("--artifact", "as_artifact", is_flag=True, help="Show PATH as an artifact (ONNX files are both).")
@click.option("--source", "as_source", is_flag=True, help="Show PATH as a model source (ONNX files are both).")
@click.option("--json", "as_json", is_flag=True, help="Print the spec as JSON.")
@friendly_errors
def inspect_command(path: str, allow_unsafe: bool, as_artifact: bool, as_source: bool, as_json: bool) -> None:
    """Show a model's framework, inputs and outputs, or an artifact's format, I/O, precision and contract."""
    from edgekit import is_artifact

    if as_artifact or (not as_source and is_artifact(path)):
        from edgekit import inspect_artifact
        from edgekit.console_artifact import print_artifact_info

        info = inspect_artifact(path)
        click.echo(info.model_dump_json(indent=2)) if as_json else print_artifact_info(info)
        return
    from edgekit import inspect
    from edgekit.console import print_source

    source = inspect(path, allow_unsafe=allow_unsafe)
    click.echo(source.model_dump_json(indent=2)) if as_json else print_source(source)
