"""Which ``TrialExecutor`` a tune run uses: ``local`` (this machine's pool, no extra needed) or ``ray``."""
from __future__ import annotations

import importlib

from edgekit.errors import InvalidOptionError, MissingDependencyError
from edgekit.tune.executor import LocalExecutor, TrialExecutor

EXECUTORS = ("local", "ray")


def open_executor(kind: str, address: str | None = None, max_workers: int = 1, devices: tuple[str, ...] = ()) -> TrialExecutor:
    """The executor named ``kind``; ``address`` is the Ray cluster's (None: a local Ray started here, holding the
    custom resources of ``devices``; a cluster's nodes declare their own devices)."""
    if kind == "local":
        if address is not None:
            raise InvalidOptionError("an executor address is for executor='ray'", "drop the address or choose executor='ray'")
        return LocalExecutor(max_workers=max_workers)
    if kind != "ray":
        raise InvalidOptionError(f"unknown executor '{kind}'", f"choose from: {', '.join(EXECUTORS)}")
    from edgekit.dependencies import install_line, require

    require(("ray",), install_line("ray"), "the Ray executor (executor='ray')")
    try:
        module = importlib.import_module("edgekit.tune.ray_executor")
    except ModuleNotFoundError as exc:
        if exc.name != "edgekit.tune.ray_executor":
            raise
        raise MissingDependencyError("this edgekit has no Ray executor (edgekit.tune.ray_executor is missing)",
                                     "install an edgekit release with the [ray] extra") from None
    return module.RayExecutor(address=address) if address is not None else module.RayExecutor(devices=devices)
