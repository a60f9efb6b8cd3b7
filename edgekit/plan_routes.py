"""The route side of a build plan: each (format, precision) resolved to its route and checked against what the
route declares (precisions, honoured quantization-scheme fields, calibration, installed packages)."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from edgekit.errors import DataError, EdgekitError, PlanError, UnsupportedRouteError
from edgekit.options import QuantScheme
from edgekit.routes import ROUTES, Route, find_route

T = TypeVar("T")
QUANTIZED = ("int8",)  # precisions whose converters read the QuantScheme


class PlannedRoute(BaseModel):
    """One artifact to build: (format, precision), its converter and what that converter declared."""

    model_config = ConfigDict(frozen=True)

    format: str
    precision: str
    route: str
    scheme_fields: tuple[str, ...]  # QuantScheme fields the converter honours at this precision
    needs_calibration: bool
    static_shapes: bool

    @property
    def label(self) -> str:
        return f"{self.format}/{self.precision}"


class Problems:
    """The problems found while planning, raised together at the end (``PlanError`` when more than one)."""

    def __init__(self) -> None:
        self.items: list[EdgekitError] = []

    def add(self, problem: EdgekitError | None) -> None:
        if problem is not None:
            self.items.append(problem)

    def attempt(self, make: Callable[[], T], fallback: Any = None) -> T:
        """``make()``, or ``fallback`` with its error recorded."""
        try:
            return make()
        except EdgekitError as exc:
            self.items.append(exc)
            return fallback

    def raise_all(self) -> None:
        if self.items:
            raise PlanError.of(self.items)


def plan_jobs(framework: str, formats: list[str], precisions: list[str], explicit: bool, scheme: QuantScheme,
              qat: bool, problems: Problems) -> list[PlannedRoute]:
    """Every (format, precision) to build with its route; each unsupported combination is recorded in ``problems``."""
    if not explicit:  # a profile's formats the source cannot reach are dropped, unless none is left
        formats = [f for f in formats if (framework, f) in ROUTES] or formats
    jobs: list[PlannedRoute] = []
    for fmt in formats:
        for precision in precisions:
            if precision == "dynamic" and fmt != "tflite" and len(formats) > 1:
                continue  # dynamic-range is a TFLite scheme; other formats get the rest of the list
            route = problems.attempt(lambda: find_route(framework, fmt, precision))
            if route is None:
                continue
            for problem in route_problems(route, framework, fmt, precision, scheme, qat):
                problems.add(problem)
            jobs.append(PlannedRoute(
                format=fmt, precision=precision, route=route.name, scheme_fields=tuple(sorted(route.scheme_fields)),
                needs_calibration=precision == "int8" and not qat, static_shapes=route.static_shapes,
            ))
    if not jobs and not problems.items:
        problems.add(UnsupportedRouteError("nothing to build for these formats and precisions",
                                           "dynamic-range precision exists only for tflite"))
    return jobs


def route_problems(route: Route, framework: str, fmt: str, precision: str, scheme: QuantScheme, qat: bool) -> list[EdgekitError]:
    """What ``route`` cannot do of this job: a missing package, or a scheme field set to a value it does not honour.

    A field the route does not honour is accepted at its QuantScheme default (the converter's notes say what it
    does instead) and refused at any other value. A QAT build takes its ranges from training, not from the scheme.
    """
    found: list[EdgekitError] = []
    missing = [name for name in route.requires if importlib.util.find_spec(name) is None]
    if missing:
        extra = route.extra or "convert"
        found.append(UnsupportedRouteError(
            f"the {framework}->{fmt} route needs {', '.join(missing)}, which is not installed",
            f"pip install 'edgekit[{extra}]'",
        ))
    if precision not in QUANTIZED or qat:
        return found
    defaults = QuantScheme()
    for field in QuantScheme.model_fields:
        value = getattr(scheme, field)
        if field not in route.scheme_fields and value != getattr(defaults, field):
            honoured = ", ".join(sorted(route.scheme_fields)) or "none"
            found.append(UnsupportedRouteError(
                f"the {framework}->{fmt} route ({route.name}) does not honour quantization {field}={value!r} at {precision}",
                f"leave {field} at {getattr(defaults, field)!r} for this format, or build this scheme for another "
                f"format; the fields this route honours: {honoured}",
            ))
    return found


def calibration_problem(jobs: list[PlannedRoute], calibration_data: Any, train_data: Any) -> DataError | None:
    """int8 needs calibration data (``calibration_data``, else ``train_data``): the one place that says so."""
    if calibration_data is not None or train_data is not None or not any(job.needs_calibration for job in jobs):
        return None
    return DataError(
        "int8 quantization needs calibration data",
        "give calibration_data= / --calibration: an array, a .npy/.npz file, an image folder or an iterable of batches",
    )
