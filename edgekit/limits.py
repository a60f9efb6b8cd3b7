"""Limits checked before anything is allocated or converted: memory, graph complexity, special files, time.

Every check here reads sizes and metadata only (``stat``, the ONNX graph without its external data): a model
or data file that would need more memory than the budget, a graph nested or chained past what real models
need, a FIFO or device file given as a file, all are refused with the numbers before a worker starts.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from edgekit.errors import DataError, EdgekitError, InvalidOptionError, ModelFileError

#: the default memory budget: this fraction of the machine's memory (or of the cgroup's limit)
BUDGET_FRACTION = 0.5
#: a conversion holds a model's weights at least this many times (the source and the converted copy)
WEIGHT_COPIES = 2
#: feeds held in memory at once, at the least (the synthetic validation set)
MIN_FEEDS_HELD = 16
#: int8 calibration below this many samples gets a warning
MIN_CALIBRATION_SAMPLES = 16
#: default per-step timeout: a base plus seconds per GiB of model
TIMEOUT_BASE_SECONDS = 1800.0
TIMEOUT_SECONDS_PER_GIB = 1800.0
_SHAPE_HINT = ("give smaller --input-shape / input_shapes= sizes, or raise --memory-budget / memory_budget= "
               "if the machine has the memory")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40}


@dataclass(frozen=True)
class GraphLimits:
    """How large an ONNX graph may be. Real models stay far below: a few thousand nodes, chains of at most a
    couple of thousand, control flow nested two or three deep."""

    max_nodes: int = 200_000  # nodes of the graph and every subgraph
    max_chain: int = 4_000  # the longest path of nodes through one graph
    max_nesting: int = 8  # subgraphs (If/Loop/Scan bodies) inside subgraphs

    @classmethod
    def of(cls, overrides: Mapping[str, int] | None) -> GraphLimits:
        names = [f.name for f in fields(cls)]
        for key, value in (overrides or {}).items():
            if key not in names or not isinstance(value, (int, float)) or value < 1:
                raise InvalidOptionError(f"invalid graph limit {key}={value!r}",
                                         f"give positive integers for: {', '.join(names)}")
        return replace(cls(), **{k: int(v) for k, v in (overrides or {}).items()})


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def parse_bytes(value: int | float | str) -> int:
    """``4G``, ``512MB``, ``1.5g`` or a number of bytes."""
    text = str(value).strip().lower().replace("i", "")
    number = text.rstrip("kmgtb ")
    unit = text[len(number):].strip()
    try:
        size = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise InvalidOptionError(f"'{value}' is not a memory size", "give bytes or a size such as 4G or 512M") from None
    if size <= 0:
        raise InvalidOptionError(f"the memory budget must be positive, got '{value}'", "e.g. --memory-budget 8G")
    return int(size)


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory, or the cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 8 << 30
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def memory_budget(value: int | float | str | None = None) -> int:
    """The memory budget in bytes: ``value`` if given, else :data:`BUDGET_FRACTION` of :func:`machine_memory`."""
    return parse_bytes(value) if value is not None else int(machine_memory() * BUDGET_FRACTION)


def route_timeout(timeout: float | None, model_bytes: int | None) -> float | None:
    """Seconds one conversion step may take: ``timeout`` (0: no limit), else scaled by the model's size."""
    if timeout is not None:
        if timeout < 0:
            raise InvalidOptionError(f"the timeout must not be negative, got {timeout}", "give seconds, or 0 for no limit")
        return float(timeout) or None
    return TIMEOUT_BASE_SECONDS + TIMEOUT_SECONDS_PER_GIB * (model_bytes or 0) / (1 << 30)


def check_regular_file(path: Path, what: str, error: type[EdgekitError] = ModelFileError) -> None:
    """Refuse a FIFO, socket or device file (reading one blocks or never ends) before anything opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a missing file is reported by the reader, with its own message
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None)
    if kind:
        raise error(f"{path} is {kind}, not a regular file: edgekit does not read {what} from it",
                    f"save the {what} to a regular file and give that")


def check_feed_budget(inputs: Iterable[Any], samples: int, budget: int) -> None:
    """Refuse inputs whose fixed shapes need more than ``budget`` for ``samples`` feeds, before any array exists."""
    import numpy as np

    total, largest = 0, None
    for spec in inputs:
        dims = [d for d in spec.shape if isinstance(d, int)]
        if spec.dtype == "object" or len(dims) != len(spec.shape):
            continue
        size = int(np.prod(dims, dtype=object)) * max(np.dtype(spec.dtype).itemsize, 1)
        total += size
        if largest is None or size > largest[1]:
            largest = (spec, size)
    if largest is not None and total * samples > budget:
        spec, size = largest
        raise DataError(
            f"input '{spec.name}' of shape {list(spec.shape)} ({spec.dtype}) needs {human_bytes(size)} per sample "
            f"({size} bytes); {samples} samples of every input need {human_bytes(total * samples)}, over the memory "
            f"budget of {human_bytes(budget)}",
            _SHAPE_HINT,
        )


def calibration_warning(count: int, precisions: Iterable[str]) -> str | None:
    """A warning when an int8 build calibrates on fewer than :data:`MIN_CALIBRATION_SAMPLES` samples."""
    if "int8" not in precisions or count <= 0 or count >= MIN_CALIBRATION_SAMPLES:
        return None
    return (f"warning: int8 calibration used {count} sample(s); at least {MIN_CALIBRATION_SAMPLES} are needed for "
            f"stable quantization ranges (give {MIN_CALIBRATION_SAMPLES - count} more)")


def noted(artifact: Any, warning: str | None) -> Any:
    """An int8 artifact (``edgekit.specs.Artifact``) with the calibration ``warning`` added to its notes."""
    if not warning or artifact.precision != "int8":
        return artifact
    return artifact.model_copy(update={"notes": (*artifact.notes, warning)})


def check_early(input_shapes: Mapping[str, Any] | None, budget: int, **data: Any) -> None:
    """Checks that need no model: data paths that are FIFOs or devices, and ``input_shapes`` that cannot fit the
    budget even at one byte per element (the exact check, with dtypes, follows once the model is open)."""
    for what, value in data.items():
        if isinstance(value, (str, Path)):
            check_regular_file(Path(value), f"{what} data", DataError)
    for name, dims in (input_shapes or {}).items():
        try:
            elements = 1
            for dim in dims:
                elements *= max(int(dim), 1)
        except (TypeError, ValueError):
            continue  # fix_shapes reports malformed shapes with its own message
        if elements * MIN_FEEDS_HELD > budget:
            raise DataError(
                f"input '{name}' of shape {list(dims)} needs at least {human_bytes(elements)} per sample ({elements} bytes "
                f"at one byte per element); {MIN_FEEDS_HELD} samples need {human_bytes(elements * MIN_FEEDS_HELD)}, "
                f"over the memory budget of {human_bytes(budget)}",
                _SHAPE_HINT,
            )
