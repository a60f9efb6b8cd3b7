"""Keep third-party progress prints and log chatter out of edgekit's own output."""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(logger: str = "", level: int = logging.ERROR) -> Iterator[None]:
    """Swallow stdout and raise ``logger`` (the root logger by default) to ``level`` for the duration."""
    log = logging.getLogger(logger or None)
    previous = log.level
    log.setLevel(level)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(previous)
