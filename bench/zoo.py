"""Zoo: real trained models from public wheels through edgekit, side by side with the bare converters.

For every model of ``bench/zoo_models.py`` and every (format, precision) in tflite/onnx/openvino/executorch x
fp32/int8:

* **edgekit**: one ``edgekit.convert`` call per model (calibration and validation data given per input,
  ``input_shapes`` where the model has dynamic dimensions). Verdict: ``passed`` (every interval clears its
  threshold), ``failed`` (artifact kept, with its metrics), ``inconclusive`` (an interval straddles its
  threshold: the totals say which check and on how many samples), ``no route`` (a pair edgekit has no converter
  for) or ``error`` (no artifact, with the message).
* **baseline**: the same conversion done by calling the underlying converter directly, one documented call
  each (``openvino.convert_model`` / Keras 3 ``model.export``, ``nncf.quantize``,
  ``onnxruntime.quantization.quantize_static`` with the same calibration feeds,
  ``tf.lite.TFLiteConverter`` with a representative dataset, ``tf2onnx.convert.from_keras``,
  ``torch.onnx.export``, ``litert_torch.convert``, ``torch.export`` + ExecuTorch's ``to_edge_transform_and_lower``
  with the XNNPACK partitioner and pt2e quantizer). Verdict: ``verified``, ``broken`` (wrong outputs),
  ``int8 not really quantized`` (under half the weights stored as int8) or ``no artifact`` (error).
  Like edgekit's, baseline OpenVINO artifacts are judged with ``INFERENCE_PRECISION_HINT=f32``; the cosine
  under ``compile_model``'s default (bf16 on CPUs with AVX512_BF16) is recorded beside.

Every artifact, edgekit's and the baseline's, is run here through its own runtime (ONNX Runtime, OpenVINO,
LiteRT, the ExecuTorch runtime) and compared with the source framework's outputs on evaluation data that calibration never saw,
using ``edgekit.validation.output_metrics``; both sides are judged by edgekit's default rule for each output's
kind (guessed from the source's values by ``edgekit.output_kinds.guess_kind``): cosine 0.9999 fp32 / 0.98 int8,
top-1 agreement 0.95 too for int8 classifiers, relative error 1e-3 fp32 / 0.1 int8 for regression outputs,
cosine 0.95 int8 for detection heads (point estimates; edgekit's own verdict also needs the whole interval).
Each model runs in its own process.

    .venv/bin/python bench/zoo.py [--models a,b] [--formats f,g] [--merge] [--calibration 32] [--evaluation 64] [--workdir DIR]

``--merge --formats executorch`` runs only those rows and keeps every other row of zoo.json (recorded under
``partial_runs`` with its date and command).

Writes bench/results/zoo.json and bench/results/zoo.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from zoo_baseline import baseline_artifacts, rename  # noqa: E402
from zoo_models import MODELS, Feed, Source, ZooModel, fetch  # noqa: E402

# bench/executorch.py (a bench script) would shadow the executorch package: this folder leaves sys.path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

RESULTS = Path(__file__).parent / "results"
FORMATS = ("tflite", "onnx", "openvino", "executorch")
PRECISIONS = ("fp32", "int8")
COSINE = {"fp32": 0.9999, "int8": 0.98}
TOP1 = 0.95
INT8_FRACTION = 0.5


# ---------------------------------------------------------------- running artifacts natively


def run_artifact(path: Path, fmt: str, feeds: list[Feed], f32_hint: bool = True) -> list[dict[str, np.ndarray]]:
    """Outputs (by the artifact's own names, in its order) of one artifact on each feed, through its runtime."""
    path = Path(path)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        outs = [o.name for o in session.get_outputs()]
        return [dict(zip(outs, session.run(None, rename(feed, names)))) for feed in feeds]
    if fmt == "openvino":
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "f32"} if f32_hint else {}
        compiled = ov.Core().compile_model(str(path), "CPU", config)
        names = [next(iter(p.get_names()), f"input_{i}") for i, p in enumerate(compiled.inputs)]
        outs = [next(iter(p.get_names()), f"output_{i}") for i, p in enumerate(compiled.outputs)]
        request = compiled.create_infer_request()
        results = []
        for feed in feeds:
            renamed = rename(feed, names)
            values = request.infer([renamed[n] for n in names])
            results.append({name: np.array(values[port]) for name, port in zip(outs, compiled.outputs)})
        return results
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        signature = next(iter(interpreter._get_full_signature_list().values()), {})  # the only place names survive
        named = {index: name for name, index in signature.get("outputs", {}).items()}
        inputs = interpreter.get_input_details()
        names = [d["name"] for d in inputs]
        results = []
        for feed in feeds:
            renamed = rename(feed, names)
            for detail in inputs:
                value = renamed[detail["name"]]
                if tuple(detail["shape"]) != value.shape:
                    interpreter.resize_tensor_input(detail["index"], value.shape)
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():
                interpreter.set_tensor(detail["index"], _tflite_in(renamed[detail["name"]], detail))
            interpreter.invoke()
            outputs = interpreter.get_output_details()
            results.append({named.get(d["index"], d["name"]): _tflite_out(interpreter.get_tensor(d["index"]), d)
                            for d in outputs})
        return results
    if fmt == "executorch":
        return _run_pte(path, feeds)
    raise ValueError(fmt)


def _run_pte(path: Path, feeds: list[Feed]) -> list[dict[str, np.ndarray]]:
    """A .pte through the ExecuTorch runtime: inputs in the order the program's ``edgekit_io`` method names
    (positional ``input_N`` for a program without it), outputs by the names it gives."""
    import torch
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(path.read_bytes())
    method = program.load_method("forward")
    meta = method.metadata
    names = json.loads(program.load_method("edgekit_io").execute([])[0]) if "edgekit_io" in program.method_names else {}
    inputs = names.get("inputs") or [f"input_{i}" for i in range(meta.num_inputs())]
    outputs = names.get("outputs") or [f"output_{i}" for i in range(meta.num_outputs())]
    from edgekit.formats.executorch.program import SCALAR_TYPES

    metas = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
    results = []
    for feed in feeds:
        renamed = rename(feed, inputs)
        values = []
        for name, info in zip(inputs, metas):  # shapes are fixed at export: a scalar fed as [1] takes the program's shape
            value = np.asarray(renamed[name]).astype(SCALAR_TYPES.get(int(info.dtype()), "float32"))
            values.append(torch.from_numpy(np.array(value.reshape(tuple(info.sizes())), order="C")))  # 0-d stays 0-d
        results.append({name: np.array(v.numpy()) for name, v in zip(outputs, method.execute(values))})
    return results


def _tflite_in(value: np.ndarray, detail: dict) -> np.ndarray:
    """A float input quantized with the tensor's own scale and zero point when the model takes integers."""
    scale, zero = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.integer) and scale and np.issubdtype(value.dtype, np.floating):
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(value / scale) + zero, info.min, info.max).astype(detail["dtype"])
    return value.astype(detail["dtype"])


def _tflite_out(value: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.integer) and scale:
        return (value.astype(np.float32) - zero) * scale
    return value.copy()


def align(source_names: list[str], artifact_outputs: dict[str, np.ndarray], references: list[np.ndarray]) -> list[np.ndarray]:
    """Artifact outputs in the source's order: by name, else the first unused output with the same size."""
    unused = dict(artifact_outputs)
    aligned = []
    for name, ref in zip(source_names, references):
        key = name if name in unused else next((k for k, v in unused.items() if v.size == ref.size), None)
        if key is None:
            raise ValueError(f"the artifact has no output matching '{name}' ({ref.size} values)")
        aligned.append(unused.pop(key))
    return aligned


def metrics(source: Source, references: list[list[np.ndarray]], path: Path, fmt: str, feeds: list[Feed],
            f32_hint: bool = True) -> list[dict[str, Any]]:
    """``output_metrics`` of each source output against the artifact over the evaluation feeds, each with the kind
    (classifier, regression, detection, embedding, tensor) that edgekit's rules guess from the source's values."""
    from edgekit.output_kinds import guess_kind
    from edgekit.specs import TensorSpec
    from edgekit.validation import output_metrics

    outputs = run_artifact(path, fmt, feeds, f32_hint)
    per_output = list(zip(*[align(source.output_names, out, ref) for out, ref in zip(outputs, references)]))
    result = []
    for index, name in enumerate(source.output_names):
        ref = [r[index] for r in references]
        kind = guess_kind(TensorSpec(name=name, shape=ref[0].shape, dtype=str(ref[0].dtype)), "", ref)
        result.append(output_metrics(name, ref, list(per_output[index]), kind=kind).model_dump())
    return result


def meets(outputs: list[dict[str, Any]], precision: str) -> bool:
    """edgekit's default rule for each output's kind, on the point estimates: relative error for regression
    outputs (0.1 int8, 1e-3 fp32), the detection cosine for detection heads, the cosine for the rest; top-1
    agreement too for int8 classifiers."""
    from edgekit.options import Tolerances

    tolerances = Tolerances.default_for(precision)

    def ok(m: dict[str, Any]) -> bool:
        if m.get("kind") == "regression":
            return m["relative_error"] <= tolerances.relative_error
        return m["cosine"] >= (tolerances.detection_cosine if m.get("kind") == "detection" else COSINE[precision])

    return all(ok(m) and (precision == "fp32" or m["top1_agreement"] is None or m["top1_agreement"] >= TOP1)
               for m in outputs)


# ---------------------------------------------------------------- edgekit


def run_edgekit(model: ZooModel, path: Path, source: Source, calibration: list[Feed], evaluation: list[Feed],
                references: list[list[np.ndarray]], out: Path,
                selected: tuple[str, ...] = FORMATS) -> dict[tuple[str, str], dict[str, Any]]:
    import edgekit
    from edgekit.routes import ROUTES
    from edgekit.weights import quantized_weight_fraction

    keras = {"keras2-h5": "keras2", "keras2-savedmodel": "keras2", "keras3": "keras3"}
    framework = {"onnx": "onnx", **keras}.get(model.kind, "torch")
    formats = [f for f in selected if (framework, f) in ROUTES]
    verdicts: dict[tuple[str, str], dict[str, Any]] = {
        (f, p): {"verdict": "no route", "message": f"edgekit has no {framework} -> {f} route"}
        for f in selected if f not in formats for p in PRECISIONS
    }
    if not formats:
        return verdicts
    single = len(source.input_names) == 1
    as_data = (lambda feeds: np.concatenate([f[source.input_names[0]] for f in feeds])) if single else (lambda feeds: feeds)
    kwargs: dict[str, Any] = {}
    target: Any = path
    if model.kind.startswith("torch-") and model.kind != "torch-pt2":  # a .pt2 file is given as it is
        import torch

        target, kwargs["example_inputs"] = source.framework_model, (torch.from_numpy(calibration[0]["x"]),)
    started = time.perf_counter()
    build = edgekit.convert(
        target, target="cpu-x86", formats=formats, precision=list(PRECISIONS), output_dir=out, name=model.name,
        calibration_data=as_data(calibration), validation_data=as_data(evaluation),
        calibration_samples=len(calibration), validation_samples=len(evaluation),
        input_shapes=model.input_shapes or None, **kwargs,
    )
    seconds = time.perf_counter() - started
    for artifact in build.artifacts:
        record: dict[str, Any] = {
            "verdict": artifact.verdict, "path": artifact.path, "size_bytes": artifact.size_bytes,
            "edgekit_validation": artifact.validation.model_dump(include={
                "status", "samples", "data_origin", "cosine", "cosine_interval", "top1_agreement", "top1_interval",
                "samples_needed", "message", "executed_precision"}),
            "rules": {m.name: m.rule for m in artifact.validation.outputs},
        }
        if artifact.verdict == "inconclusive":
            record["why"] = inconclusive_reason(artifact)
        try:
            record["outputs"] = metrics(source, references, Path(artifact.path), artifact.format, evaluation)
            record["independent_pass"] = meets(record["outputs"], artifact.precision)
        except Exception as exc:  # noqa: BLE001 - a zoo report keeps going and records what broke
            record["independent_error"] = _first_line(exc)
        if artifact.precision == "int8":
            record["int8_weight_fraction"] = quantized_weight_fraction(artifact.path, artifact.format)
        verdicts[(artifact.format, artifact.precision)] = record
    for failure in build.failures:
        verdicts[(failure.format, failure.precision)] = {"verdict": "error", "message": failure.error, "hint": failure.hint}
    for key in [(f, p) for f in formats for p in PRECISIONS]:
        verdicts.setdefault(key, {"verdict": "error", "message": "edgekit built nothing and reported nothing"})
    verdicts[("*", "*")] = {"seconds": round(seconds, 1), "manifest": build.manifest_path}
    return verdicts



def run_baseline(model: ZooModel, path: Path, source: Source, calibration: list[Feed], evaluation: list[Feed],
                 references: list[list[np.ndarray]], work: Path,
                 formats: tuple[str, ...] = FORMATS) -> dict[tuple[str, str], dict[str, Any]]:
    from edgekit.weights import quantized_weight_fraction

    work.mkdir(parents=True, exist_ok=True)
    verdicts = {}
    for (fmt, prec), made in baseline_artifacts(model, path, source, calibration, work, formats):
        if isinstance(made, BaseException):
            verdicts[(fmt, prec)] = {"verdict": "no artifact", "message": _first_line(made)}
            continue
        record: dict[str, Any] = {"path": str(made)}
        try:
            record["outputs"] = metrics(source, references, made, fmt, evaluation)
            if fmt == "openvino":
                record["outputs_default_hint"] = metrics(source, references, made, fmt, evaluation, f32_hint=False)
        except Exception as exc:  # noqa: BLE001
            verdicts[(fmt, prec)] = {**record, "verdict": "no artifact", "message": f"does not run: {_first_line(exc)}"}
            continue
        if prec == "int8":
            record["int8_weight_fraction"] = quantized_weight_fraction(made, fmt)
        if prec == "int8" and record["int8_weight_fraction"] < INT8_FRACTION:
            record["verdict"] = "int8 not really quantized"
        else:
            record["verdict"] = "verified" if meets(record["outputs"], prec) else "broken"
        verdicts[(fmt, prec)] = record
    return verdicts


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


# ---------------------------------------------------------------- one model, all models


def prepare(name: str, calibration_count: int, evaluation_count: int):
    """(model, path, source, calibration feeds, evaluation feeds, source outputs on the evaluation feeds)."""
    model = MODELS[name]
    path = fetch(model)
    source = Source(model, path)
    calibration = model.make_data(source, calibration_count, "calibration")
    evaluation = model.make_data(source, evaluation_count, "evaluation")
    references = [source.predict(feed) for feed in evaluation]
    return model, path, source, calibration, evaluation, references


def run_model(name: str, calibration_count: int, evaluation_count: int, work: Path,
              formats: tuple[str, ...] = FORMATS) -> dict[str, Any]:
    """Everything for one model: edgekit's and the baseline's verdicts per (format, precision) of ``formats``."""
    model, path, source, calibration, evaluation, references = prepare(name, calibration_count, evaluation_count)
    try:
        edge = run_edgekit(model, path, source, calibration, evaluation, references, work / "edgekit", formats)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        edge = {(f, p): {"verdict": "error", "message": _first_line(exc)} for f in formats for p in PRECISIONS}
    base = run_baseline(model, path, source, calibration, evaluation, references, work / "baseline", formats)
    combos = [{"format": f, "precision": p, "edgekit": edge[(f, p)], "baseline": base[(f, p)]}
              for f in formats for p in PRECISIONS]
    return {"model": name, "package": model.package, "file": model.member, "covers": model.covers,
            "calibration_samples": len(calibration), "evaluation_samples": len(evaluation),
            "edgekit_seconds": edge.get(("*", "*"), {}).get("seconds"),
            "edgekit_manifest": edge.get(("*", "*"), {}).get("manifest"), "combinations": combos}


def inconclusive_reason(artifact: Any) -> str:
    """Which check's interval straddled its threshold, on how many samples (e.g. 'top1_agreement >= 0.95 on 64')."""
    undecided = [c for m in artifact.validation.outputs for c in m.checks if c.status == "inconclusive"]
    undecided += [b for b in artifact.budgets if b.status == "inconclusive"]
    names = sorted({getattr(c, "metric", None) or c.name for c in undecided})
    return f"{', '.join(names) or 'a budget'} straddles its threshold on {artifact.validation.samples} samples"


def totals(models: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"edgekit": {}, "baseline": {}, "edgekit passed, rechecked here": {},
                                      "edgekit inconclusive, why": {}}
    for entry in models:
        for combo in entry["combinations"]:
            why = combo["edgekit"].get("why")
            if why:
                out["edgekit inconclusive, why"][why] = out["edgekit inconclusive, why"].get(why, 0) + 1
            if combo["edgekit"]["verdict"] == "passed":
                key = "confirmed" if combo["edgekit"].get("independent_pass") else "NOT confirmed"
                out["edgekit passed, rechecked here"][key] = out["edgekit passed, rechecked here"].get(key, 0) + 1
            for side in ("edgekit", "baseline"):
                verdict = combo[side]["verdict"]
                out[side][verdict] = out[side].get(verdict, 0) + 1
    return out


def _cell(record: dict[str, Any]) -> str:
    verdict = record["verdict"]
    outputs = record.get("outputs")
    if outputs:
        verdict += f" (cos {min(m['cosine'] for m in outputs):.4f}"
        top1 = [m["top1_agreement"] for m in outputs if m["top1_agreement"] is not None]
        verdict += f", top1 {min(top1):.2f})" if top1 else ")"
    if "int8_weight_fraction" in record:
        verdict += f" int8 w {record['int8_weight_fraction']:.0%}"
    validation = record.get("edgekit_validation") or {}
    if validation.get("top1_interval"):
        low, high = validation["top1_interval"]
        verdict += f" top1 CI [{low:.2f}, {high:.2f}] n={validation.get('samples')}"
    if record.get("why"):
        verdict += f"; inconclusive: {record['why']}"
    if record.get("message") and record["verdict"] not in ("no route",):
        verdict += f": {record['message'][:120]}"
    return verdict.replace("|", "/")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# edgekit zoo", "",
        f"Run {report['date']} on {report['machine']}, {report['wall_seconds']:.0f} s wall. "
        "Command: `.venv/bin/python bench/zoo.py`. Cosine is the lowest over outputs (mean per-sample cosine "
        "against the source framework on evaluation data calibration never saw); `int8 w` is the fraction of "
        "weights stored as int8. Both sides are judged by edgekit's default rule for each output's kind (regression outputs "
        "by relative error, 1e-3 fp32 / 0.1 int8; classifiers by cosine and, at int8, top-1 agreement 0.95). "
        "OpenVINO artifacts are judged with `INFERENCE_PRECISION_HINT=f32` on both sides "
        "(`compile_model`'s default runs bf16 on this CPU: fp32 IRs then reach only cosine 0.9986-0.9999; see "
        "`outputs_default_hint` in zoo.json).", "",
        "| model | format | precision | edgekit | baseline (converter called directly) |", "| --- | --- | --- | --- | --- |",
    ]
    for entry in report["models"]:
        for combo in entry["combinations"]:
            lines.append(f"| {entry['model']} | {combo['format']} | {combo['precision']} | {_cell(combo['edgekit'])} | "
                         f"{_cell(combo['baseline'])} |")
    for partial in report.get("partial_runs", []):
        what = "All rows" if tuple(partial["formats"]) == FORMATS else f"Rows of {', '.join(partial['formats'])}"
        lines += ["", f"{what} of {', '.join(partial['models'])} (re-)run {partial['date']} on {partial['machine']} "
                      f"({partial['wall_seconds']:.0f} s wall): `{partial['command']}`; the other rows are from the runs above."]
    lines += ["", "## Totals", "", "| side | " + " | ".join(["verdict", "count"]) + " |", "| --- | --- | --- |"]
    for side, counts in report["totals"].items():
        for verdict, count in sorted(counts.items()):
            lines.append(f"| {side} | {verdict} | {count} |")
    lines += ["", "## Models", ""]
    lines += [f"- **{e['model']}** (`{e['package']}`, `{e['file']}`): {e['covers']}" for e in report["models"]]
    return "\n".join(lines) + "\n"


def merge_formats(previous: list[dict[str, Any]], fresh: list[dict[str, Any]], formats: tuple[str, ...]) -> list[dict[str, Any]]:
    """The earlier entries with the rows of ``formats`` replaced by this run's (marked ``rerun``)."""
    order = {(f, p): i for i, (f, p) in enumerate((f, p) for f in FORMATS for p in PRECISIONS)}
    new = {e["model"]: e for e in fresh}
    merged = []
    for entry in previous:
        if entry["model"] not in new:
            merged.append(entry)
            continue
        rows = [c for c in entry["combinations"] if c["format"] not in formats] + new[entry["model"]]["combinations"]
        rerun = {k: new[entry["model"]].get(k) for k in ("edgekit_seconds", "edgekit_manifest", "wall_seconds")}
        merged.append({**entry, "combinations": sorted(rows, key=lambda c: order[(c["format"], c["precision"])]),
                       "rerun": {"formats": list(formats), **rerun}})
    return merged + [e for e in fresh if e["model"] not in {m["model"] for m in previous}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names: " + ", ".join(MODELS))
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--evaluation", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=None, help="where artifacts go (default: a temporary folder, kept)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one model, JSON to --json
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true", help="keep the other models' entries of the existing zoo.json")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help="comma-separated formats to run (with --merge, the other formats' rows of zoo.json are kept)")
    args = parser.parse_args(argv)
    formats = tuple(f for f in FORMATS if f in args.formats.split(","))
    if args.one:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
        entry = run_model(args.one, args.calibration, args.evaluation, args.workdir, formats)
        args.json.write_text(json.dumps(entry, indent=1, default=str))
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="edgekit-zoo-"))
    started = time.perf_counter()
    entries = []
    for name in args.models.split(","):
        out = work / name / "entry.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--json", str(out), "--workdir", str(work / name),
                               "--calibration", str(args.calibration), "--evaluation", str(args.evaluation),
                               "--formats", ",".join(formats)],
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if proc.returncode or not out.exists():
            print(f"{name}: the model's process failed with exit code {proc.returncode}", file=sys.stderr)
            continue
        entry = json.loads(out.read_text())
        entry["wall_seconds"] = round(time.perf_counter() - t0, 1)
        entries.append(entry)
        print(f"{name}: {entry['wall_seconds']} s", file=sys.stderr)
    run = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{os.cpu_count()} CPUs",
           "wall_seconds": round(time.perf_counter() - started, 1), "workdir": str(work)}
    report = {**run, "thresholds": {"cosine": COSINE, "int8_top1": TOP1, "int8_weight_fraction": INT8_FRACTION,
                                    "regression_relative_error": {"fp32": 1e-3, "int8": 0.1}, "int8_detection_cosine": 0.95}}
    if args.merge and (args.results / "zoo.json").exists():
        previous = json.loads((args.results / "zoo.json").read_text())
        ran = [e["model"] for e in entries]
        if formats != FORMATS:  # only these formats' rows were run: the rest of the rows are the earlier run's
            entries = merge_formats(previous["models"], entries, formats)
        # the report's date stays the first full run's; every merged run is listed with its own date and command
        report.update({k: previous[k] for k in ("date", "machine", "wall_seconds", "workdir") if k in previous})
        report["partial_runs"] = [*previous.get("partial_runs", []), {
            **run, "formats": list(formats), "models": ran,
            "command": ".venv/bin/python bench/zoo.py --merge" + (f" --formats {','.join(formats)}" if formats != FORMATS else "")
                       + (f" --models {args.models}" if args.models != ",".join(MODELS) else "")}]
        fresh = {entry["model"] for entry in entries}
        kept = [e for e in previous["models"] if e["model"] not in fresh]
        entries = sorted(kept + entries, key=lambda e: list(MODELS).index(e["model"]) if e["model"] in MODELS else len(MODELS))
    report.update(models=entries, totals=totals(entries))
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "zoo.json").write_text(json.dumps(report, indent=1, default=str))
    (args.results / "zoo.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
