"""``edgekit.inspect``: what a model takes and gives, loaded the same safe way a build loads it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.messages import OpenSource
from edgekit.sources import is_in_memory
from edgekit.specs import ModelSource
from edgekit.worker import InProcessSession, WorkerSession


def inspect(model: Any, *, example_inputs: Any = None, allow_unsafe: bool = False, isolate: bool | None = None) -> ModelSource:
    """Load ``model`` (in a worker process for files) and return its framework, input and output specs and hash."""
    import tempfile

    if isolate is None:
        isolate = not is_in_memory(model)
    with tempfile.TemporaryDirectory(prefix="edgekit-inspect-") as logs:
        session = WorkerSession(Path(logs)) if isolate else InProcessSession()
        try:
            return session.call(OpenSource(model, example_inputs, allow_unsafe))
        finally:
            session.close()
