"""The build plan: every option of ``edgekit.convert`` validated once, before any model is loaded.

``make_plan`` applies the target profile's defaults, resolves each (format, precision) to its route with the
route's declared capabilities (``edgekit.routes.Route``) and refuses every unsupported combination at once
(``PlanError`` lists them all). The frozen ``BuildPlan`` it returns is what the build runs, and, serialised,
the manifest's ``config["plan"]``.

Adding an option to ``convert()``: a field of ``BuildOptions`` (validated by pydantic, serialised in the
manifest) plus the keyword in ``edgekit.pipeline.convert``; derived values go into ``BuildPlan`` in ``make_plan``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgekit.contract.io import load_contract
from edgekit.contract.schema import Contract
from edgekit.errors import InvalidOptionError
from edgekit.options import QuantScheme, Tolerances
from edgekit.plan_routes import PlannedRoute, Problems, calibration_problem, plan_jobs
from edgekit.profiles import Budgets, DeviceProfile, load_profile

SCHEMA = "edgekit.plan/1"
DEFAULT_CALIBRATION_SAMPLES = 300
DEFAULT_VALIDATION_SAMPLES = 200


class BuildOptions(BaseModel):
    """The options of one ``edgekit.convert`` call as given (data and callbacks excluded), checked for type and range."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = "cpu-x86"
    formats: tuple[str, ...] | None = None
    precision: tuple[str, ...] | None = None
    output_dir: str = "build/edgekit"
    input_shapes: dict[str, tuple[int, ...]] | None = None
    states: dict[str, str] | None = None
    allow_unsafe: bool = False
    quantization: dict[str, Any] | None = None
    tolerances: dict[str, Any] | None = None  # checked with Tolerances in the plan, with the other problems
    name: str | None = None
    calibration_samples: int = Field(DEFAULT_CALIBRATION_SAMPLES, gt=0)
    validation_samples: int = Field(DEFAULT_VALIDATION_SAMPLES, gt=0)
    isolate: bool | None = None
    timeout: float | None = Field(None, ge=0)  # None: scaled by the model's size (edgekit.limits); 0: no limit
    memory_budget: int | str | None = None  # bytes or "8G"; None: a share of this machine's memory
    graph_limits: dict[str, int] | None = None  # ONNX max_nodes / max_chain / max_nesting
    input_values: dict[str, Any] | None = None  # inputs fixed to constants and folded into the graph (ONNX)
    validate_on_calibration: bool = False  # validate on the calibration data itself (the verdict says so)
    allow_inconclusive: bool = False  # Build.accepted takes inconclusive verdicts
    output_kinds: dict[str, str] | None = None  # {output: classifier/embedding/regression/detection/tensor}
    layout: str | None = None  # "NHWC": TFLite artifacts with NHWC inputs/outputs (None: the source's layout)
    float_layers: tuple[str, ...] = ()  # int8: layers (names in the converted graph) kept in float
    contract: dict[str, Any] | str | None = None  # the deployment contract: a .yaml/.json file or its mapping

    @field_validator("contract", mode="before")
    @classmethod
    def _contract(cls, value: Any) -> Any:  # a Contract as its document, a path as text
        return value.document() if hasattr(value, "document") else str(value) if isinstance(value, Path) else value

    @field_validator("input_values", mode="before")
    @classmethod
    def _plain_values(cls, value: Any) -> Any:  # numpy scalars and arrays as JSON numbers and lists
        import numpy as np

        return {k: np.asarray(v).tolist() for k, v in value.items()} if isinstance(value, Mapping) else value
    force: bool = False
    budgets: dict[str, Any] | None = None
    accuracy_target: dict[str, Any] | str | None = None  # read by edgekit.rescue.parse_target in the plan
    rescue: bool | None = None  # None: on for an accuracy target or a profile that allows float fallback
    rescue_budget_s: float | None = Field(None, ge=0)

    @field_validator("formats", "precision", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("target", "output_dir", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> BuildOptions:
        """The options from ``values`` (keys not options are ignored); every invalid one is named in one error."""
        try:
            return cls.model_validate({k: v for k, v in values.items() if k in cls.model_fields})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidOptionError(f"invalid options: {problems}", "see help(edgekit.convert) for each option") from None


@dataclass(frozen=True)
class BuildInputs:
    """What a build reads besides its options: the model and its data (never serialised)."""

    model: Any
    example_inputs: Any = None
    calibration_data: Any = None
    validation_data: Any = None
    train_data: Any = None
    val_data: Any = None
    optimizations: Any = None


class BuildPlan(BaseModel):
    """Everything a build will do, decided before any worker starts (serialised as the manifest's ``config["plan"]``)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    schema_: str = Field(SCHEMA, alias="schema")
    options: BuildOptions
    target: str
    profile: DeviceProfile
    framework: str
    name: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    jobs: tuple[PlannedRoute, ...]
    scheme: QuantScheme
    tolerances: dict[str, Tolerances]
    budgets: Budgets
    accuracy_target: Tolerances | None
    layout: str | None  # "NHWC" for TFLite artifacts, None: the source's
    rescue: bool  # int8 routes rescue themselves (edgekit.rescue) towards accuracy_target or their int8 tolerances
    optimizations: tuple[Any, ...]  # edgekit.optimize.steps.Step, in order
    isolate: bool
    memory_budget: int  # bytes any array the build makes must fit in (edgekit.limits)
    timeout: float | None  # seconds one step may take (None: no limit)
    contract: Contract | None = None  # as declared (edgekit.contract.io); completed and checked in the build

    @property
    def output_dir(self) -> Path:
        return Path(self.options.output_dir)

    def manifest_config(self) -> dict[str, Any]:
        """The plan as JSON (what the manifest stores); steps as their own JSON form."""
        document = self.model_dump(mode="json", by_alias=True, exclude={"optimizations"})
        document["optimizations"] = [step.model_dump(mode="json") for step in self.optimizations]
        return document


def make_plan(inputs: BuildInputs, options: BuildOptions) -> tuple[BuildPlan, BuildInputs]:
    """The plan of one build, and the inputs with a recipe's data filled in; raises one error naming every problem."""
    from edgekit.optimize.plan import isolation, precisions_with, resolve_steps
    from edgekit.specs import FORMATS, PRECISIONS

    problems = Problems()
    profile = load_profile(options.target)  # nothing else can be planned without it
    framework = problems.attempt(lambda: framework_of(inputs.model))
    steps, train, val = problems.attempt(lambda: resolve_steps(inputs.optimizations, inputs.train_data, inputs.val_data),
                                         ([], inputs.train_data, inputs.val_data))
    formats = problems.attempt(lambda: choices(options.formats, profile.formats, "format", FORMATS), [])
    asked = problems.attempt(lambda: choices(options.precision, (profile.precision,), "precision", PRECISIONS), [])
    precisions = problems.attempt(lambda: precisions_with(steps, asked, options.precision is not None), asked)
    scheme = problems.attempt(lambda: scheme_for(profile, options.quantization), profile.quantization)
    tolerances = {p: problems.attempt(lambda p=p: tolerances_for(p, options.tolerances, profile)) for p in precisions}
    budgets = problems.attempt(lambda: _budgets(profile, options.budgets), profile.budgets)
    target = problems.attempt(lambda: _accuracy_target(options.accuracy_target))
    qat = any(getattr(step, "kind", None) == "qat" for step in steps)
    if options.rescue is False and options.accuracy_target is not None:
        problems.add(InvalidOptionError("an accuracy target needs the rescue, and rescue=False turns it off", "drop one of the two"))
    rescue = options.rescue if options.rescue is not None else (options.accuracy_target is not None or profile.allow_float_fallback)
    jobs = plan_jobs(framework, formats, precisions, options.formats is not None, scheme, qat, problems) if framework else []
    problems.add(calibration_problem(jobs, inputs.calibration_data, train))
    budget, timeout = _limits(inputs, options, problems)
    layout = problems.attempt(lambda: _layout(options.layout, formats))
    contract = problems.attempt(lambda: load_contract(options.contract))
    problems.raise_all()
    plan = BuildPlan(
        options=options, target=profile.name, profile=profile, framework=framework,
        name=options.name or default_name(inputs.model), formats=tuple(formats), precisions=tuple(precisions), jobs=tuple(jobs),
        scheme=scheme, tolerances=tolerances, budgets=budgets, accuracy_target=target, layout=layout,
        rescue=bool(rescue) and not qat, optimizations=tuple(steps),
        isolate=isolation(inputs.model, steps, options.isolate), memory_budget=budget, timeout=timeout, contract=contract,
    )
    return plan, replace(inputs, train_data=train, val_data=val)


def _limits(inputs: BuildInputs, options: BuildOptions, problems: Problems) -> tuple[int, float | None]:
    """The memory budget and per-step timeout, with the checks that need no loaded model (``edgekit.limits``):
    data paths that are FIFOs, input shapes too large for the budget, model files over the budget or the graph limits."""
    from edgekit import limits, limits_onnx

    budget = problems.attempt(lambda: limits.memory_budget(options.memory_budget), 0)
    if not budget:
        return 0, options.timeout
    problems.attempt(lambda: limits.check_early(options.input_shapes, budget, calibration=inputs.calibration_data,
                                                 validation=inputs.validation_data, train=inputs.train_data, val=inputs.val_data))
    graph = problems.attempt(lambda: limits.GraphLimits.of(options.graph_limits))
    size = problems.attempt(lambda: limits_onnx.check_model_limits(inputs.model, budget, graph)) if graph is not None else None
    timeout = problems.attempt(lambda: limits.route_timeout(options.timeout, size), options.timeout)
    return budget, timeout


def _layout(layout: str | None, formats: Sequence[str]) -> str | None:
    """``None`` (keep the source's layout) or ``"NHWC"``; NHWC is a TFLite option."""
    if layout in (None, "NCHW", "source"):
        return None
    if layout != "NHWC":
        raise InvalidOptionError(f"unknown layout '{layout}'", "choose NHWC (TFLite artifacts) or leave it out to keep the source's")
    if "tflite" not in formats:
        raise InvalidOptionError("layout='NHWC' applies to tflite artifacts and none is built", "add the tflite format")
    return layout


def framework_of(model: Any) -> str:
    """The framework of a model file (sniffed from its content) or an in-memory model."""
    from edgekit.sources import framework_of_object, is_in_memory
    from edgekit.sources.sniff import sniff

    if is_in_memory(model):
        framework = framework_of_object(model)
        if framework is None:
            raise InvalidOptionError(
                f"edgekit cannot convert an object of type {type(model).__module__}.{type(model).__qualname__}",
                "pass a model file path, a Keras model, a torch.nn.Module (with example_inputs=) or an onnx.ModelProto",
            )
        return framework
    return sniff(Path(model)).framework


def default_name(model: Any) -> str:
    """The artifacts' file stem when ``name`` is not given: the model file's name, or "model"."""
    from edgekit.sources import is_in_memory

    return "model" if is_in_memory(model) else Path(model).name.split(".")[0] or "model"


def choices(value: Sequence[str] | None, default: Sequence[str], what: str, allowed: Sequence[str]) -> list[str]:
    """``value`` (or ``default``) as a list without repeats; an unknown item is an error with a suggestion."""
    from edgekit.errors import did_you_mean

    items = list(default) if value is None else list(value)
    if not items:
        raise InvalidOptionError(f"no {what} given", f"choose from: {', '.join(allowed)}")
    for item in items:
        if item not in allowed:
            raise InvalidOptionError(f"unknown {what} '{item}'", f"{did_you_mean(item, allowed)}choose from: {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def scheme_for(profile: DeviceProfile, overrides: Mapping[str, Any] | None) -> QuantScheme:
    """The profile's quantization scheme with ``quantization=`` overrides applied."""
    if not overrides:
        return profile.quantization
    try:
        return QuantScheme.model_validate({**profile.quantization.model_dump(), **dict(overrides)})
    except ValueError as exc:
        raise InvalidOptionError(f"invalid quantization options: {exc}", f"fields: {', '.join(QuantScheme.model_fields)}") from None


def tolerances_for(precision: str, overrides: Mapping[str, float] | None, profile: DeviceProfile) -> Tolerances:
    """The validation thresholds of ``precision``: the defaults, then the profile's budgets, then ``tolerances=``."""
    base = Tolerances.default_for(precision).model_dump()
    if profile.budgets.min_cosine is not None:
        base["cosine"] = profile.budgets.min_cosine
    if profile.budgets.min_top1_agreement is not None:
        base["top1_agreement"] = profile.budgets.min_top1_agreement
    try:
        return Tolerances.model_validate({**base, **dict(overrides or {})})
    except ValueError as exc:
        raise InvalidOptionError(f"invalid tolerances: {exc}", "give cosine= and/or top1_agreement= as numbers") from None


def _budgets(profile: DeviceProfile, overrides: Mapping[str, Any] | None) -> Budgets:
    from edgekit.compat.gate import budgets_for

    return budgets_for(profile, overrides)


def _accuracy_target(value: Mapping[str, float] | str | None) -> Tolerances | None:
    from edgekit.rescue import parse_target

    return parse_target(value) if value else None

