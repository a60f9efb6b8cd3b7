"""The framework side of a build: load the source once, then convert and validate route after route.

A ``BuildSession`` runs inside a worker process for model files, or in the caller's process for
in-memory models; the pipeline talks to it through the same three calls either way.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.atomic import publish_files
from edgekit.data import Feed
from edgekit.errors import ConversionError, EdgekitError, first_line
from edgekit.optimize.labelled import LabelledData
from edgekit.optimize.report import OptimizationReport
from edgekit.options import QuantScheme, Tolerances
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.routes import RouteRequest, find_route
from edgekit.sources import load_source
from edgekit.sources.base import LoadedSource
from edgekit.specs import Artifact, ModelSource
from edgekit.validation import check_quantized, compare, match_names


@dataclass(frozen=True)
class RouteJob:
    """One (format, precision) artifact to build and validate."""

    format: str
    precision: str
    scheme: QuantScheme
    tolerances: Tolerances
    output_dir: Path
    staging_dir: Path
    stem: str
    calibration: list[Feed] = field(default_factory=list)
    static_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    float_layers: tuple[str, ...] = ()  # int8: layers kept in float (edgekit.rescue)
    layout: str | None = None  # "NHWC": tflite artifacts take/give rank-4 NCHW tensors as NHWC

    @property
    def label(self) -> str:
        return f"{self.format}/{self.precision}"


def files_digest(files: list[Path]) -> str:
    """sha256 over the artifact's files in order (for a single file, the same as ``sha256sum``)."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def run_sequence(
    predict: Callable[[Feed], dict[str, Any]], feeds: list[Feed], states: dict[str, str], progress: Callable[[float], None]
) -> list[dict[str, Any]]:
    """Outputs of ``predict`` on each feed; with ``states``, each state input is carried from the previous step's output."""
    outputs: list[dict[str, Any]] = []
    for index, feed in enumerate(feeds):
        if states and outputs:
            feed = {**feed, **{name: outputs[-1][output] for name, output in states.items()}}
        outputs.append(predict(feed))
        progress((index + 1) / len(feeds))
    return outputs


class BuildSession:
    """Holds the loaded source and its reference outputs for the length of one build."""

    def __init__(self) -> None:
        self.source: LoadedSource | None = None
        self.validation: list[Feed] = []
        self.references: list[dict[str, Any]] = []
        self.states: dict[str, str] = {}
        self.labels: np.ndarray | None = None
        self.reference_accuracy: float | None = None
        self.example_inputs: Any = None

    def open(self, model: Any, example_inputs: Any = None, allow_unsafe: bool = False, progress: ProgressCallback = ignore) -> ModelSource:
        progress(ProgressEvent("load", 0.0, "loading the model"))
        self.source = load_source(model, example_inputs=example_inputs, allow_unsafe=allow_unsafe)
        self.example_inputs = example_inputs
        return self.source.spec

    def optimize(
        self, steps: list, train: LabelledData, val: LabelledData, max_accuracy_drop: float | None = None,
        progress: ProgressCallback = ignore,
    ) -> tuple[ModelSource, OptimizationReport]:
        """Run the optimization chain; the optimized model becomes the source every route converts."""
        from edgekit.optimize.run import run_chain

        source = self._require_source()
        model, report = run_chain(source, steps, train, val, max_accuracy_drop, progress)
        example = self.example_inputs
        if example is None and source.framework == "torch":
            example = {name: array[:1] for name, array in val.x.items()}
        optimized = load_source(model, example_inputs=example)
        optimized.fake_quantized = report.fake_quantized
        self.source = optimized
        return optimized.spec, report

    def set_validation(
        self, feeds: list[Feed], states: dict[str, str] | None = None, labels: np.ndarray | None = None,
        progress: ProgressCallback = ignore,
    ) -> None:
        """Run the reference model once on the validation feeds.

        ``states`` maps a state input to the output carried into it: the feeds are then one sequence,
        and from the second step on each state input takes the previous step's output. ``labels`` (one
        class index per feed) add top-1 accuracy to every artifact's validation.
        """
        source = self._require_source()
        self.validation, self.states, self.labels = feeds, dict(states or {}), labels
        self.references = run_sequence(source.predict, feeds, self.states, self._progress_of(progress, "reference"))
        self.reference_accuracy = self._accuracy(self.references)

    def _accuracy(self, outputs: list[dict[str, Any]]) -> float | None:
        if self.labels is None or not outputs:
            return None
        name = self._require_source().spec.outputs[0].name
        predicted = np.array([np.asarray(out[name]).reshape(-1).argmax() for out in outputs])
        return float(np.mean(predicted == self.labels[: len(predicted)]))

    def carry_states(self, feeds: list[Feed], states: dict[str, str], progress: ProgressCallback = ignore) -> list[Feed]:
        """Calibration feeds with each state input set to the reference model's previous output, so that
        quantization sees the range a state really takes in a sequence rather than the initial state."""
        source = self._require_source()
        outputs = run_sequence(source.predict, feeds, states, self._progress_of(progress, "calibration states"))
        carried = [feeds[0]]
        for feed, previous in zip(feeds[1:], outputs[:-1]):
            carried.append({**feed, **{name: previous[output] for name, output in states.items()}})
        return carried

    @staticmethod
    def _progress_of(progress: ProgressCallback, stage: str, message: str = "") -> Callable[[float], None]:
        return lambda fraction: progress(ProgressEvent(stage, fraction, message or stage))

    def build_route(self, job: RouteJob, progress: ProgressCallback = ignore) -> Artifact:
        """Convert, validate and publish one artifact; raise EdgekitError when no artifact can be made."""
        source = self._require_source()
        route = find_route(source.framework, job.format, job.precision)
        convert = route.load()
        stage = f"convert:{job.label}"
        request = RouteRequest(
            source=source, precision=job.precision, scheme=job.scheme, calibration=job.calibration,
            out_dir=job.staging_dir, stem=job.stem, static_shapes=job.static_shapes, float_layers=job.float_layers,
            layout=job.layout if job.format == "tflite" else None,
            progress=lambda fraction, message: progress(ProgressEvent(stage, fraction, message)),
        )
        progress(ProgressEvent(stage, 0.0, f"converting to {job.label}"))
        started = time.perf_counter()
        try:
            output = convert(request)
        except EdgekitError:
            raise
        except Exception as exc:  # a converter bug or a framework error the route did not wrap
            first = first_line(exc)
            raise ConversionError(f"{route.name} failed: {type(exc).__name__}: {first}", "see the log with --verbose") from exc
        seconds = time.perf_counter() - started
        validation = self._validate(job, output.path, output.output_map, progress, _transposes(source.spec, output))
        finals = [job.output_dir / f.name for f in output.files]
        publish_files(list(zip(output.files, finals)))
        main = job.output_dir / output.path.name
        ordered = [main, *(f for f in finals if f != main)]
        return Artifact(
            format=job.format, precision=job.precision, route=route.name, path=str(main),
            files=tuple(str(f) for f in ordered), size_bytes=sum(f.stat().st_size for f in ordered),
            sha256=files_digest(ordered), inputs=tuple(output.inputs or source.spec.inputs),
            outputs=tuple(output.outputs or source.spec.outputs), validation=validation,
            convert_seconds=round(seconds, 3), notes=tuple(output.notes),
        )

    def _validate(self, job: RouteJob, path: Path, output_map: dict[str, str] | None, progress: ProgressCallback,
                  transposes: dict[str, tuple[int, ...]] | None = None):
        from edgekit.runtime import open_runner

        source = self._require_source()
        stage = f"validate:{job.label}"
        runner = open_runner(path, job.format)
        in_names = match_names(source.spec.inputs, runner.inputs)
        out_names = match_names(source.spec.outputs, runner.outputs, output_map)

        turn = transposes or {}

        def run(feed: Feed) -> dict[str, Any]:
            raw = runner.run({in_names[name]: _turn(value, turn.get(name)) for name, value in feed.items()})
            return {name: _turn(raw[artifact_name], turn.get(name), back=True) for name, artifact_name in out_names.items()}

        actuals = run_sequence(run, self.validation, self.states, self._progress_of(progress, stage, f"validating {job.label}"))
        result = compare(
            self.references, actuals, source.spec.outputs, job.tolerances,
            classifier=source.spec.task == "classifier", executed_precision=runner.executed_precision,
        )
        if self.labels is not None:
            result = result.model_copy(update={"accuracy": self._accuracy(actuals), "reference_accuracy": self.reference_accuracy})
        return check_quantized(result, path, job.format, job.tolerances) if job.precision in ("int8", "dynamic") else result

    def source_ops(self, progress: ProgressCallback = ignore) -> list:
        """The source's layers/ops mapped to each format's ops (``edgekit.compat``), read where the model is loaded."""
        from edgekit.compat.source_ops import source_ops

        progress(ProgressEvent("check", 0.0, "listing the model's ops"))
        return source_ops(self._require_source())

    def _require_source(self) -> LoadedSource:
        if self.source is None:
            raise RuntimeError("BuildSession.open() must be called first")
        return self.source



def _transposes(spec: ModelSource, output: Any) -> dict[str, tuple[int, ...]]:
    """Source tensors an NHWC artifact takes/gives transposed (NCHW source -> NHWC artifact), by source name."""
    artifact = {t.name: t.layout for t in (*(output.inputs or ()), *(output.outputs or ()))}
    return {t.name: (0, 2, 3, 1) for t in (*spec.inputs, *spec.outputs)
            if t.layout == "NCHW" and artifact.get(t.name) == "NHWC"}


def _turn(value: Any, axes: tuple[int, ...] | None, back: bool = False) -> Any:
    if axes is None:
        return value
    return np.ascontiguousarray(np.transpose(value, np.argsort(axes) if back else axes))
