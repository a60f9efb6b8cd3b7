"""One way to build the project's registries (routes, formats, optimization backends): a key given twice is an error."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def unique_table(entries: Iterable[tuple[K, V]], describe: Callable[[K], str]) -> dict[K, V]:
    """The table of ``entries``; a key given twice raises ValueError("<describe(key)> is registered twice")."""
    table: dict[K, V] = {}
    for key, value in entries:
        if key in table:
            raise ValueError(f"{describe(key)} is registered twice")
        table[key] = value
    return table
