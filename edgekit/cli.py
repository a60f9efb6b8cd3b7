"""The ``edgekit`` command line: a thin layer over the public API.

User errors print a message and a hint (no traceback) and exit 2; a failed validation gate exits 1.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from edgekit import __version__
from edgekit.clean import clean_command
from edgekit.cli_data import data_command, verdict_kwargs, verdict_options
from edgekit.cli_errors import friendly_errors
from edgekit.errors import InvalidOptionError

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


def _parse_numbers(text: str) -> Any:
    """A number (int when it is one) or a comma-separated list of numbers; ValueError otherwise."""
    items = [float(part) if any(c in part for c in ".eE") else int(part) for part in text.split(",")]
    return items[0] if len(items) == 1 and "," not in text else items


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
def main() -> None:
    """Convert Keras, PyTorch and ONNX models to TFLite, ONNX and OpenVINO, validated against the source."""


@main.command()
@click.argument("model", required=False, type=click.Path(path_type=str))
@click.option("--plan", "plan_path", type=click.Path(exists=True, dir_okay=False),
              help="Rebuild the build a plan file describes (a tune trial's plan.json, a promoted build's edgekit-plan.json).")
@click.option("--target", "-t", default="cpu-x86", show_default=True, help="Device profile name or .yaml file.")
@click.option("--format", "-f", "formats", multiple=True, help="tflite, onnx or openvino (repeatable; default: the target's).")
@click.option("--precision", "-p", "precisions", multiple=True, help="fp32, fp16, int8 or dynamic (repeatable; default: the target's).")
@click.option("--calibration", "-c", type=click.Path(exists=True), help="Calibration data: .npy, .npz (by input name) or an image folder.")
@click.option("--validation", type=click.Path(exists=True), help="Validation data (default: part of the calibration data held out for int8, else random inputs).")
@click.option("--out", "-o", "output_dir", default="build/edgekit", show_default=True, help="Output folder.")
@click.option("--name", help="Base name of the artifact files (default: the model file's name).")
@click.option("--tolerance", multiple=True, metavar="METRIC=VALUE", help="Override a validation threshold: cosine=0.999, top1_agreement=0.97.")
@click.option("--quant", multiple=True, metavar="KEY=VALUE", help="Override the profile's quantization scheme, e.g. per_channel=false, io_dtype=int8.")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2,...",
              help="Fix an input's dynamic dimensions, e.g. image=1,3,320,320 (repeatable).")
@click.option("--state", multiple=True, metavar="INPUT=OUTPUT",
              help="A state input and the output carried into it: validation runs the data as one sequence (repeatable).")
@click.option("--input-value", "input_value", multiple=True, metavar="NAME=VALUE",
              help="Fix an input to a constant folded into the graph, e.g. sr=16000 (ONNX; repeatable).")
@click.option("--allow-unsafe", is_flag=True, help="Load models that can run code (Keras Lambda layers, TorchScript). Only for files you trust.")
@click.option("--timeout", type=float,
              help="Seconds after which one conversion step is stopped (default: scaled by model size; 0: none).")
@click.option("--memory-budget", metavar="BYTES", help="Memory a build may plan for, e.g. 8G (default: half the machine's).")
@click.option("--graph-limit", multiple=True, metavar="KEY=N", help="Raise an ONNX graph limit: max_nodes, max_chain, max_nesting.")
@click.option("--json", "as_json", is_flag=True, help="Print the build as JSON instead of a table.")
@click.option("--verbose", "-v", is_flag=True, help="Print converters' full error messages and the frameworks' own log lines.")
@click.option("--force", is_flag=True, help="Build even when the model breaks a hard limit of the target (see `edgekit check`).")
@click.option("--budget", multiple=True, metavar="KEY=VALUE",
              help="A budget every artifact must meet, e.g. max_size_bytes=4000000, min_cosine=0.99 (repeatable; exit 1 if broken).")
@click.option("--accuracy-target", metavar="cosine=0.99,top1=0.97",
              help="Rescue int8 routes until they meet this: per-channel, culprit layers in float, calibration, int16 activations.")
@click.option("--no-rescue", is_flag=True, help="Build plain int8 only (no rescue towards the profile's accuracy budget).")
@click.option("--rescue-budget", type=float, metavar="SECONDS", help="Time budget of each int8 rescue (default scaled by model size).")
@click.option("--train-data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled training data for optimization steps: .npz with arrays x and y (also the default calibration).")
@click.option("--val-data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled held-out data (.npz with x and y): measures each step and every artifact's accuracy.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False),
              help="Optimization steps from a YAML/TOML recipe file (may also name train_data and val_data).")
@click.option("--prune", "prune_sparsity", type=float, metavar="SPARSITY", help="Prune this fraction of weights, e.g. 0.5.")
@click.option("--structured", is_flag=True, help="With --prune: remove whole channels (a smaller, faster model).")
@click.option("--distill", "teacher", type=click.Path(exists=True), metavar="TEACHER",
              help="Distill from this teacher model file into the model (after --prune).")
@click.option("--qat", "qat_epochs", type=int, metavar="EPOCHS", help="Quantization-aware training for EPOCHS (last step; int8 only).")
@click.option("--epochs", type=int, metavar="N", help="Fine-tuning epochs of --prune and --distill.")
@verdict_options
@click.option("--layout", type=click.Choice(["NHWC"]), help="Give TFLite artifacts NHWC inputs/outputs (default: the source's).")
@click.option("--contract", type=click.Path(exists=True, dir_okay=False),
              help="Deployment contract (.yaml/.json): preprocessing, ranges, labels; written into every artifact.")
@friendly_errors
def convert(model: str, target: str, formats: tuple[str, ...], precisions: tuple[str, ...], calibration: str | None,
            validation: str | None, output_dir: str, name: str | None, tolerance: tuple[str, ...], quant: tuple[str, ...],
            input_shape: tuple[str, ...], state: tuple[str, ...], input_value: tuple[str, ...], allow_unsafe: bool,
            timeout: float | None, memory_budget: str | None, graph_limit: tuple[str, ...], as_json: bool, verbose: bool,
            force: bool, budget: tuple[str, ...], accuracy_target: str | None, train_data: str | None,
            val_data: str | None, recipe: str | None, prune_sparsity: float | None, structured: bool, teacher: str | None,
            qat_epochs: int | None, epochs: int | None, layout: str | None, no_rescue: bool = False,
            rescue_budget: float | None = None, plan_path: str | None = None, contract: str | None = None,
            **verdict: Any) -> None:
    """Convert MODEL for a target device, validate every artifact and write edgekit-manifest.json.

    Optimization steps (--prune, --distill, --qat, in that order, or --recipe) train the model on --train-data
    before conversion and are measured on --val-data. --plan PLAN.json rebuilds a planned build instead of MODEL.
    """
    from edgekit import convert as run_convert
    from edgekit import distill, parse_shape, prune, qat
    from edgekit.console import print_build, progress_bar

    if plan_path or model is None:
        return _convert_plan(plan_path, model, output_dir, as_json, verbose)

    tuning = {} if epochs is None else {"epochs": epochs}
    steps = [
        *([prune(prune_sparsity, structured=structured, **tuning)] if prune_sparsity is not None else []),
        *([distill(teacher, **tuning)] if teacher else []),
        *([qat(qat_epochs)] if qat_epochs is not None else []),
    ]
    if structured and prune_sparsity is None:
        raise InvalidOptionError("--structured needs --prune SPARSITY", "e.g. --prune 0.5 --structured")
    if recipe and steps:
        raise InvalidOptionError("give either --recipe or --prune/--distill/--qat, not both", "put every step in the recipe")

    from edgekit.quiet import native_stderr, quiet_framework_env

    quiet_framework_env(verbose)
    with native_stderr(verbose), progress_bar() as on_progress:
        build = run_convert(
            model, target=target, formats=formats or None, precision=precisions or None, calibration_data=calibration,
            validation_data=validation, output_dir=output_dir, name=name, tolerances=_pairs(tolerance, "--tolerance", float),
            quantization=_pairs(quant, "--quant", _parse_scalar), input_shapes=dict(map(parse_shape, input_shape)),
            states=_pairs(state, "--state"), allow_unsafe=allow_unsafe, timeout=timeout,
            progress=on_progress, force=force, budgets=_pairs(budget, "--budget", float), accuracy_target=accuracy_target,
            rescue=False if no_rescue else None, rescue_budget_s=rescue_budget,
            optimizations=recipe or steps or None, train_data=train_data, val_data=val_data, layout=layout,
            memory_budget=memory_budget, graph_limits=_pairs(graph_limit, "--graph-limit", int),
            input_values=_pairs(input_value, "--input-value", _parse_numbers), contract=contract, **verdict_kwargs(verdict),
        )
    if as_json:
        click.echo(build.model_dump_json(indent=2))
    else:
        print_build(build, verbose=verbose)
    if not build.accepted:
        sys.exit(EXIT_GATE_FAILED)


def _convert_plan(plan_path: str | None, model: str | None, output_dir: str, as_json: bool, verbose: bool) -> None:
    """``convert --plan``: the plan's own output folder unless --out was given."""
    from edgekit import convert_plan
    from edgekit.console import print_build, progress_bar

    if plan_path is None or model is not None:
        raise InvalidOptionError("give either MODEL or --plan PLAN.json", "e.g. edgekit convert --plan plan.json --out build/again")
    given = click.get_current_context().get_parameter_source("output_dir") != click.core.ParameterSource.DEFAULT
    with progress_bar() as on_progress:
        build = convert_plan(plan_path, output_dir if given else None, progress=on_progress)
    click.echo(build.model_dump_json(indent=2)) if as_json else print_build(build, verbose=verbose)
    if not build.accepted:
        sys.exit(EXIT_GATE_FAILED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print name, device class, formats and precision per profile as JSON.")
@click.option("--show", metavar="NAME_OR_FILE", help="Print one profile after validating it.")
@friendly_errors
def targets(as_json: bool, show: str | None) -> None:
    """List the device profiles (targets) edgekit can build for."""
    from edgekit import list_profiles, load_profile
    from edgekit.console import print_targets

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


@main.command(name="check")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--target", "-t", default="cpu-x86", show_default=True, help="Device profile name or .yaml file.")
@click.option("--format", "-f", "formats", multiple=True, help="Format(s) to check for (default: the target's).")
@click.option("--precision", "-p", help="Precision to check for (default: the target's).")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2,...", help="Fix an input's dynamic dimensions.")
@click.option("--quant", multiple=True, metavar="KEY=VALUE", help="Override the profile's quantization scheme, e.g. io_dtype=int8.")
@click.option("--allow-unsafe", is_flag=True, help="Load models that can run code. Only for files you trust.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@friendly_errors
def check_command(model: str, target: str, formats: tuple[str, ...], precision: str | None, input_shape: tuple[str, ...],
                  quant: tuple[str, ...], allow_unsafe: bool, as_json: bool) -> None:
    """List what the target cannot run in MODEL (a source model or an artifact), runs on a fallback, or needs changed.

    Exits 1 when a hard limit of the target is broken.
    """
    from edgekit import check, parse_shape
    from edgekit.console import print_compatibility

    report = check(model, target=target, formats=formats or None, precision=precision,
                   quantization=_pairs(quant, "--quant", _parse_scalar), input_shapes=dict(map(parse_shape, input_shape)),
                   allow_unsafe=allow_unsafe)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        print_compatibility(report)
    if report.blocking:
        sys.exit(EXIT_GATE_FAILED)


# -- profiling and the on-device agent -----------------------------------------------------------------


@main.command(name="devices")
@click.option("--scan", "scan_seconds", type=float, default=1.5, show_default=True, help="Seconds to look for agents on the LAN (0: do not look).")
@click.option("--json", "as_json", is_flag=True, help="Print the devices as JSON.")
@friendly_errors
def devices_command(scan_seconds: float, as_json: bool) -> None:
    """What can run models here (runtimes, delegates, execution providers, OpenVINO devices) and agents on the LAN."""
    from edgekit import devices, host_info
    from edgekit.profiling.console import print_devices

    entries = devices()
    host = host_info(entries=entries)
    agents: list[str] = []
    if scan_seconds > 0:
        from edgekit import discover_agents as browse

        agents = browse(scan_seconds)
    if as_json:
        click.echo(json.dumps({"host": host.model_dump(mode="json"), "devices": [e.model_dump(mode="json") for e in entries],
                               "agents": agents}, indent=2))
    else:
        print_devices(host, entries, agents)


@main.command(name="profile")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--device", "-d", default="local:cpu", show_default=True, help="local:cpu, local:gpu, local:npu or agent://HOST:PORT.")
@click.option("--target", "-t", help="Device profile whose runtime section picks delegate, execution provider, OpenVINO device.")
@click.option("--threads", type=int, default=1, show_default=True, help="Inference threads (0: the runtime's default).")
@click.option("--runs", type=int, default=100, show_default=True, help="Minimum number of timed runs.")
@click.option("--min-time", "min_time", type=float, default=2.0, show_default=True, help="Minimum seconds of timed runs.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed runs after the first inference.")
@click.option("--affinity", help="CPU cores to pin the measuring process to, e.g. 0 or 0,1.")
@click.option("--op-runs", "op_runs", type=int, default=20, show_default=True, help="Runs of the per-op profile (0: none).")
@click.option("--dataset", type=click.Path(path_type=str),
              help="Labelled .npz (x, y or input names + labels) or class-named image folders.")
@click.option("--token", help="The agent's token (default: $EDGEKIT_AGENT_TOKEN).")
@click.option("--agent", "agent_url", help="The agent to profile on: agent://HOST:PORT or https://HOST:PORT (as --device).")
@click.option("--agent-fingerprint", help="SHA-256 fingerprint of the TLS certificate the agent printed (pinned).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds allowed per artifact.")
@click.option("--json", "json_path", type=click.Path(path_type=str), help="Write the report as JSON to this file.")
@click.option("--html", "html_path", type=click.Path(path_type=str), help="Write a self-contained HTML report to this file.")
@friendly_errors
def profile_command(artifacts: tuple[str, ...], device: str, target: str | None, threads: int, runs: int, min_time: float,
                    warmup: int, affinity: str | None, op_runs: int, dataset: str | None, token: str | None, timeout: float,
                    json_path: str | None, html_path: str | None, agent_url: str | None = None,
                    agent_fingerprint: str | None = None) -> None:
    """Measure latency, memory, per-op times (and accuracy) of artifacts or a build folder on a device."""
    from edgekit import profile
    from edgekit.profiling.console import print_report, progress_printer

    try:
        cores = tuple(int(c) for c in affinity.split(",")) if affinity else None
    except ValueError:
        raise InvalidOptionError(f"--affinity '{affinity}' is not a list of core numbers", "e.g. --affinity 0 or 0,1") from None
    device = agent_url or device
    with progress_printer() as progress:
        report = profile(list(artifacts), device=device, device_profile=target, threads=threads or None, runs=runs,
                         min_seconds=min_time, warmup=warmup, affinity=cores, op_profile_runs=op_runs, dataset=dataset,
                         token=token, timeout=timeout, progress=progress, agent_fingerprint=agent_fingerprint)
    if json_path:
        report.save_json(json_path)
    if html_path:
        report.save_html(html_path)
    print_report(report)
    if report.partial:
        sys.exit(EXIT_GATE_FAILED)


@main.command(name="debug")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--calibration", "-c", required=True, type=click.Path(exists=True), help="The data the artifact was calibrated on.")
@click.option("--data", type=click.Path(exists=True), help="Evaluation data (default: the calibration data).")
@click.option("--reference", "-r", type=click.Path(exists=True),
              help="Float model of the same format (default: the build's fp32 artifact).")
@click.option("--samples", type=int, default=64, show_default=True, help="Evaluation samples to trace.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the report(s) as JSON to this file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write an HTML report (charts side by side) to this file.")
@friendly_errors
def debug_command(artifacts: tuple[str, ...], calibration: str, data: str | None, reference: str | None, samples: int,
                  json_path: str | None, html_path: str | None) -> None:
    """Trace quantized ARTIFACTS layer by layer against their float reference and name the culprits."""
    from edgekit.divergence.cli import run_debug

    run_debug(artifacts, calibration, data, reference, samples, json_path, html_path)


@main.command(name="gui")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@friendly_errors
def gui_command(paths: tuple[str, ...]) -> None:
    """Open the desktop app; PATHS may name a model file, a build folder or a project file to open."""
    from edgekit.dependencies import GUI, require

    require(("PySide6", "matplotlib"), GUI, "the desktop app (edgekit gui)")
    from edgekit.gui.app import check_platform, run

    check_platform()  # Qt's X11 plugin and the system libraries it needs, named with the apt-get line
    raise SystemExit(run(list(paths)))


from edgekit.agent.cli import agent_command  # noqa: E402
from edgekit.tune.cli import tune_command  # noqa: E402
from edgekit.tune.ray_node import ray_node_command  # noqa: E402
from edgekit.cli_inspect import inspect_command  # noqa: E402

main.add_command(agent_command)
main.add_command(clean_command)
main.add_command(data_command)
main.add_command(tune_command)
main.add_command(ray_node_command)
main.add_command(inspect_command)

if __name__ == "__main__":
    main()
