"""``edgekit tune``: search builds for the Pareto front of latency, accuracy and size; ``--select N`` promotes one."""
from __future__ import annotations

import sys

import click

from edgekit.cli_errors import friendly_errors
from edgekit.errors import InvalidOptionError


def _pairs(values: tuple[str, ...], option: str) -> dict[str, float]:
    found = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            found[key.strip()] = float(value)
        except ValueError:
            raise InvalidOptionError(f"{option} expects KEY=NUMBER, got '{item}'", f"e.g. {option} max_latency_ms=5") from None
        if not sep or not key.strip():
            raise InvalidOptionError(f"{option} expects KEY=NUMBER, got '{item}'", f"e.g. {option} max_latency_ms=5")
    return found


@click.command(name="tune")
@click.argument("model", required=False, type=click.Path(path_type=str))
@click.option("--target", "-t", default="cpu-x86", show_default=True, help="Device profile name or .yaml file.")
@click.option("--objective", "objectives", multiple=True, type=click.Choice(["latency", "accuracy", "size", "memory"]),
              help="An objective (repeatable; default: latency, accuracy, size).")
@click.option("--constraint", multiple=True, metavar="KEY=VALUE",
              help="A budget: max_latency_ms, min_accuracy, min_cosine, min_top1, max_size_bytes, max_peak_memory_bytes.")
@click.option("--trials", type=int, default=30, show_default=True, help="Trials the study runs to (counting earlier runs').")
@click.option("--device", "-d", "devices", multiple=True, help="local:cpu or agent://HOST:PORT (repeatable; same profile).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Where tasks run.")
@click.option("--address", help="The Ray cluster's address (with --executor ray; default: a local Ray).")
@click.option("--seed", type=int, default=0, show_default=True, help="The sampler's seed.")
@click.option("--calibration", "-c", type=click.Path(exists=True), help="Calibration data (.npy, .npz or an image folder).")
@click.option("--validation", type=click.Path(exists=True), help="Validation data (default: held out of the calibration data).")
@click.option("--out", "-o", "output_dir", default="build/edgekit", show_default=True,
              help="The build folder --select promotes to; the study lives in OUT.tune beside it.")
@click.option("--format", "-f", "formats", multiple=True, help="Limit the search to these formats (default: the target's).")
@click.option("--precision", "-p", "precisions", multiple=True, help="Limit the search to these precisions.")
@click.option("--threads", multiple=True, type=int, help="Thread counts to try (default: 1, 2, 4, ... up to the cores).")
@click.option("--runs", type=int, default=50, show_default=True, help="Minimum timed runs per measurement.")
@click.option("--min-time", "min_time", type=float, default=1.0, show_default=True, help="Minimum seconds of timed runs.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed runs after the first inference.")
@click.option("--token", help="The agents' token (default: $EDGEKIT_AGENT_TOKEN).")
@click.option("--parallel", type=int, help="Trials in flight at once (default: 1 locally, 2 per device on Ray; at most --batch).")
@click.option("--batch", type=int, default=4, show_default=True,
              help="Trials asked together and told when all have ended (the search depends on it, not on --parallel).")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2,...", help="Fix an input's dynamic dimensions.")
@click.option("--tolerance", multiple=True, metavar="METRIC=VALUE", help="Override a validation threshold, e.g. cosine=0.99.")
@click.option("--rescue-budget", "rescue_budget", type=float, metavar="SECONDS",
              help="Time budget of the int8 rescue whose curve gives a format's float-layer sets (default scaled by "
                   "model size; 0: trace prefixes only).")
@click.option("--select", "select", type=int, metavar="N", help="Promote trial N's build to --out (atomically) and stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@friendly_errors
def tune_command(model: str | None, target: str, objectives: tuple[str, ...], constraint: tuple[str, ...], trials: int,
                 devices: tuple[str, ...], executor: str, address: str | None, seed: int, calibration: str | None,
                 validation: str | None, output_dir: str, formats: tuple[str, ...], precisions: tuple[str, ...],
                 threads: tuple[int, ...], runs: int, min_time: float, warmup: int, token: str | None, parallel: int | None,
                 batch: int, input_shape: tuple[str, ...], tolerance: tuple[str, ...], rescue_budget: float | None,
                 select: int | None, as_json: bool) -> None:
    """Search MODEL's builds for TARGET: each trial built, validated and measured on the device; prints the front.

    Run it again with the same options to resume the study (finished trials are kept, builds never redone).
    """
    import edgekit
    from edgekit.tune.console import print_result, print_selected, trial_printer

    if select is not None:
        build = edgekit.select_trial(select, output_dir)
        print_selected(select, build)
        return
    if model is None:
        raise InvalidOptionError("edgekit tune needs a MODEL (or --select N)", "e.g. edgekit tune model.onnx -c calibration.npy")
    shapes = dict(map(edgekit.parse_shape, input_shape))
    with trial_printer() as (progress, on_trial):
        result = edgekit.tune(
            model, target=target, objectives=objectives or ("latency", "accuracy", "size"),
            constraints=_pairs(constraint, "--constraint"), trials=trials, devices=devices or ("local:cpu",),
            executor=executor, address=address, seed=seed, calibration_data=calibration, validation_data=validation,
            output_dir=output_dir, formats=formats or None, precisions=precisions or None, threads=threads or None,
            runs=runs, min_seconds=min_time, warmup=warmup, token=token, parallel=parallel, batch=batch,
            input_shapes=shapes or None, tolerances=_pairs(tolerance, "--tolerance") or None,
            rescue_budget=rescue_budget, progress=progress, on_trial=on_trial,
        )
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        print_result(result)
    if not result.front:
        sys.exit(1)
