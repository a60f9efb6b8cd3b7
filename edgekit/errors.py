"""One error hierarchy: every error carries a message and a hint, shown by the CLI and the GUI."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgekitError(Exception):
    """Base of every error edgekit raises on purpose.

    ``message`` says what went wrong, ``hint`` says what to do about it, ``detail`` keeps a framework's
    full error text when the message only quotes its cause (the manifest and ``--verbose`` show it).
    ``exit_code`` is what the CLI exits with: 2 for user errors, 1 for failed gates.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str = "", *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def __reduce__(self):  # keep the hint and detail when the error crosses a process boundary
        return (_rebuild, (type(self), self.message, self.hint, self.detail))

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


class ModelFileError(EdgekitError):
    """A model file is missing, empty, truncated, of an unknown kind or corrupt."""


class UnsafeModelError(EdgekitError):
    """A model would run code or read files outside its folder if loaded."""


class UnsupportedRouteError(EdgekitError):
    """No converter exists for the asked (framework, format) pair."""


class InvalidOptionError(EdgekitError):
    """An option has a value edgekit does not accept."""


class DataError(EdgekitError):
    """Calibration or evaluation data is missing, empty or does not fit the model's inputs."""


class ProfileError(EdgekitError):
    """A device profile is unknown or its file is invalid."""


class OutputError(EdgekitError):
    """The output folder cannot be created or written."""


class IncompatibleTargetError(EdgekitError):
    """The model breaks a hard limit of the target device (an op it cannot run, a dynamic shape, a precision)."""


class PlanError(InvalidOptionError):
    """A build cannot be planned: every problem found in its options, listed at once in ``problems``."""

    def __init__(self, message: str, hint: str = "", problems: tuple[EdgekitError, ...] = ()) -> None:
        super().__init__(message, hint)
        self.problems = tuple(problems)

    def __reduce__(self):
        return (type(self), (self.message, self.hint, self.problems))

    @classmethod
    def of(cls, problems: list[EdgekitError]) -> EdgekitError:
        """One problem as itself, several as one PlanError listing each message and hint."""
        if len(problems) == 1:
            return problems[0]
        listed = "\n".join(f"  - {p.message}" + (f" (hint: {p.hint})" if p.hint else "") for p in problems)
        return cls(f"the build cannot be planned, {len(problems)} problems:\n{listed}",
                   "fix each problem as hinted; nothing was converted", tuple(problems))


class Cancelled(EdgekitError):
    """The caller cancelled the work (``cancel`` set); nothing half-written is kept."""


class ProfilingError(EdgekitError):
    """Profiling an artifact failed, timed out, or the device / agent is not reachable."""


class ManifestError(ModelFileError):
    """A build manifest is missing, corrupt, or not an edgekit manifest."""


class ConversionError(EdgekitError):
    """A converter failed, crashed or timed out for one route."""


class MissingDependencyError(EdgekitError):
    """A package that a route, runner or front end needs is not installed; the hint is the line that installs it."""


class ClusterError(EdgekitError):
    """A distributed executor cannot reach its cluster, or the cluster cannot run a task (no node holds its device)."""


class TaskLostError(ClusterError):
    """A task was lost with the node or worker running it (a crash, a killed node, a device gone); others go on."""


class ValidationFailedError(EdgekitError):
    """One or more artifacts did not pass validation (a failed gate, exit code 1)."""

    exit_code = 1


class OptimizationBudgetError(EdgekitError):
    """An optimization step lost more accuracy than the budget allows (a failed gate, exit code 1)."""

    exit_code = 1


def _rebuild(cls: type[EdgekitError], message: str, hint: str, detail: str) -> EdgekitError:
    error = cls(message, hint)
    error.detail = detail
    return error


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name when it has none), at most ``limit`` characters."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:limit] if limit else line


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A 'did you mean' phrase for a misspelled name, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


class ContractError(DataError):
    """A feed, data set or artifact that breaks its deployment contract (``edgekit.contract``); the message
    quotes the contract line."""
