"""The framework side of a build: load the source once, then convert and validate route after route.

A ``BuildSession`` runs inside a worker process for model files, or in the caller's process for
in-memory models; the pipeline talks to it with the same typed messages (``edgekit.messages``) either way.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import metrics
from edgekit.atomic import publish_files
from edgekit.data import Feed
from edgekit.errors import ConversionError, EdgekitError
from edgekit.messages import (
    BuildRoute,
    CarryStates,
    DataProbe,
    InputHints,
    FixInputs,
    ListSourceOps,
    Message,
    OpenSource,
    Optimize,
    ReferenceClasses,
    SetValidation,
)
from edgekit.optimize.labelled import LabelledData
from edgekit.optimize.report import OptimizationReport
from edgekit.options import QuantScheme, Tolerances
from edgekit.progress import ProgressCallback, ProgressEvent, ignore
from edgekit.routes import RouteRequest, find_route
from edgekit.sources import load_source
from edgekit.sources.base import LoadedSource
from edgekit.specs import Artifact, ModelSource
from edgekit.validation import accuracy_checks, check_quantized, compare, match_names


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
        self.context: dict[str, Any] = {}  # output kinds and where the validation data came from

    def handle(self, message: Message, progress: ProgressCallback = ignore) -> Any:
        """Run ``message`` with the handler of its type; the answer is what that handler returns."""
        if isinstance(message, OpenSource):
            return self.open(message.model, message.example_inputs, message.allow_unsafe, progress)
        if isinstance(message, ListSourceOps):
            return self.source_ops(progress)
        if isinstance(message, InputHints):
            from edgekit.contract.graph_hints import source_hints

            return source_hints(self._require_source())
        if isinstance(message, Optimize):
            return self.optimize(message.steps, message.train, message.val, message.max_accuracy_drop, progress)
        if isinstance(message, FixInputs):
            return self.fix_inputs(message.values, message.static_shapes, progress)
        if isinstance(message, SetValidation):
            return self.set_validation(message.feeds, message.states, message.labels, message.context, progress)
        if isinstance(message, ReferenceClasses):
            return self.reference_classes(message.feeds, message.kinds, progress)
        if isinstance(message, DataProbe):
            return self.data_probe(message.calibration, message.validation, message.kinds, progress)
        if isinstance(message, CarryStates):
            return self.carry_states(message.feeds, message.states, progress)
        if isinstance(message, BuildRoute):
            return self.build_route(message.job, progress)
        raise TypeError(f"BuildSession cannot handle {type(message).__name__}")

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

    def fix_inputs(self, values: dict[str, Any], static_shapes: dict[str, tuple[int, ...]],
                   progress: ProgressCallback = ignore) -> tuple[ModelSource, list[str]]:
        """Fold the inputs of ``values`` into the model every route converts (``input_values``)."""
        from edgekit.sources.fixed import fold_source

        progress(ProgressEvent("load", 0.5, f"folding fixed input(s) {', '.join(values)}"))
        self.source, notes = fold_source(self._require_source(), values, static_shapes)
        return self.source.spec, notes

    def set_validation(
        self, feeds: list[Feed], states: dict[str, str] | None = None, labels: np.ndarray | None = None,
        context: dict[str, Any] | None = None, progress: ProgressCallback = ignore,
    ) -> None:
        """Run the reference model once on the validation feeds.

        ``states`` maps a state input to the output carried into it: the feeds are then one sequence,
        and from the second step on each state input takes the previous step's output. ``labels`` (one
        class index per feed) add top-1 accuracy to every artifact's validation. ``context`` holds the declared
        output kinds (``kinds``) and the data's ``data_origin`` / ``on_calibration`` for the verdict.
        """
        source = self._require_source()
        self.validation, self.states, self.labels, self.context = feeds, dict(states or {}), labels, dict(context or {})
        self.references = run_sequence(source.predict, feeds, self.states, self._progress_of(progress, "reference"))
        self.reference_accuracy = self._accuracy(self.references)

    def _accuracy(self, outputs: list[dict[str, Any]]) -> float | None:
        correct = self._correct(outputs)
        return None if correct is None else float(np.mean(correct))

    def _correct(self, outputs: list[dict[str, Any]]) -> np.ndarray | None:
        if self.labels is None or not outputs:
            return None
        name = self._require_source().spec.outputs[0].name
        return metrics.predictions([out[name] for out in outputs]) == np.asarray(self.labels).reshape(-1)[: len(outputs)]

    def reference_classes(self, feeds: list[Feed], kinds: dict[str, str] | None = None,
                          progress: ProgressCallback = ignore) -> list[int] | None:
        """The reference model's top-1 class per feed from its classifier output, or None when it has none
        (to stratify a calibration/validation split)."""
        from edgekit.output_kinds import guess_kind

        source = self._require_source()
        outputs = [source.predict(feed) for feed in feeds]
        task, kinds = source.spec.task, dict(kinds or {})
        for spec in source.spec.outputs:
            values = [np.asarray(out[spec.name]) for out in outputs]
            if (kinds.get(spec.name) or guess_kind(spec, task, values)) == "classifier":
                return [int(v.reshape(-1, v.shape[-1])[0].argmax()) for v in values]
        return None

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
            import traceback

            from edgekit.causes import summary_of

            raise ConversionError(f"{route.name} failed: {type(exc).__name__}: {summary_of(exc)}",
                                  "the full error is printed with --verbose (and kept in the manifest's failure record)",
                                  detail=traceback.format_exc()) from exc
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
            convert_seconds=round(seconds, 3), notes=tuple(output.notes), quantizer_fallbacks=tuple(output.fallbacks),
        )

    def _validate(self, job: RouteJob, path: Path, output_map: dict[str, str] | None, progress: ProgressCallback,
                  transposes: dict[str, tuple[int, ...]] | None = None):
        from edgekit.formats.runner import open_runner

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
            kinds=self.context.get("kinds"), data_origin=self.context.get("data_origin", "validation_data"),
            on_calibration=self.context.get("on_calibration", False),
        )
        if self.labels is not None:
            accuracy, drop = accuracy_checks(self._correct(self.references), self._correct(actuals))
            result = result.model_copy(update={"accuracy": accuracy.value, "reference_accuracy": self.reference_accuracy,
                                               "accuracy_check": accuracy, "accuracy_drop_check": drop})
        return check_quantized(result, path, job.format, job.tolerances) if job.precision in ("int8", "dynamic") else result

    def data_probe(self, calibration: list[Feed], validation: list[Feed], kinds: dict[str, str] | None = None,
                   progress: ProgressCallback = ignore) -> tuple:
        """The model's part of a data report (``edgekit.calibration_report.probe``), run where the model is loaded."""
        from edgekit.activations import probe

        progress(ProgressEvent("data", 0.0, "running the float model on the data"))
        return probe(self._require_source(), calibration, validation, kinds)

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
