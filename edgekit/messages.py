"""The typed messages a build sends to its ``BuildSession`` (in this process or in a worker process).

Each message is a frozen dataclass; ``BuildSession.handle`` dispatches it to its handler by type, and a
``WorkerSession`` sends it over the worker's pipe as it is. ``replayed`` messages set what the session
holds: a worker restarted after a crash receives them again, in order, before the next message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Union

if TYPE_CHECKING:
    import numpy as np

    from edgekit.optimize.labelled import LabelledData
    from edgekit.session import RouteJob


@dataclass(frozen=True)
class OpenSource:
    """Load the model (a path or an in-memory model); answers its ``ModelSource``."""

    name: ClassVar[str] = "open"
    replayed: ClassVar[bool] = True
    model: Any
    example_inputs: Any = None
    allow_unsafe: bool = False


@dataclass(frozen=True)
class ListSourceOps:
    """The loaded source's layers/ops mapped to each format's ops (``edgekit.compat``)."""

    name: ClassVar[str] = "source_ops"
    replayed: ClassVar[bool] = False


@dataclass(frozen=True)
class InputHints:
    """What the loaded source's own first ops say about each input (``edgekit.contract.graph_hints``)."""

    name: ClassVar[str] = "input_hints"
    replayed: ClassVar[bool] = False


@dataclass(frozen=True)
class Optimize:
    """Run the optimization chain; answers (optimized ``ModelSource``, ``OptimizationReport``)."""

    name: ClassVar[str] = "optimize"
    replayed: ClassVar[bool] = True
    steps: list[Any]
    train: LabelledData
    val: LabelledData | None
    max_accuracy_drop: float | None = None


@dataclass(frozen=True)
class FixInputs:
    """Fold inputs fixed to constants into the model every route converts (``input_values``); answers the new
    ``ModelSource`` and notes on what was folded."""

    name: ClassVar[str] = "fix_inputs"
    replayed: ClassVar[bool] = True
    values: dict[str, Any]
    static_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SetValidation:
    """Run the reference model once on the validation feeds (``states`` carried step to step, ``labels`` for top-1)."""

    name: ClassVar[str] = "set_validation"
    replayed: ClassVar[bool] = True
    feeds: list[dict[str, Any]]
    states: dict[str, str] = field(default_factory=dict)
    labels: np.ndarray | None = None
    context: dict[str, Any] = field(default_factory=dict)  # declared output kinds, data origin (edgekit.verdict)


@dataclass(frozen=True)
class ReferenceClasses:
    """The reference model's top-1 class per feed, or None without a classifier output (to stratify a split)."""

    name: ClassVar[str] = "reference_classes"
    replayed: ClassVar[bool] = False
    feeds: list[dict[str, Any]]
    kinds: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataProbe:
    """The model's part of a data report: class histogram, activation coverage, a rescaling first layer."""

    name: ClassVar[str] = "data_probe"
    replayed: ClassVar[bool] = False
    calibration: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    kinds: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CarryStates:
    """Calibration feeds with each state input set to the reference model's previous output."""

    name: ClassVar[str] = "carry_states"
    replayed: ClassVar[bool] = False
    feeds: list[dict[str, Any]]
    states: dict[str, str]


@dataclass(frozen=True)
class BuildRoute:
    """Convert, validate and publish one artifact; answers its ``Artifact``."""

    name: ClassVar[str] = "build_route"
    replayed: ClassVar[bool] = False
    job: RouteJob


@dataclass(frozen=True)
class Exit:
    """Ends a worker process."""

    name: ClassVar[str] = "exit"
    replayed: ClassVar[bool] = False


Message = Union[OpenSource, ListSourceOps, InputHints, Optimize, FixInputs, SetValidation, CarryStates, BuildRoute, ReferenceClasses,
                DataProbe]
