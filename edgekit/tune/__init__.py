"""Searching the best deployment per device: trials are real builds, validated and profiled.

``edgekit.tune(model, ...)`` is this package called (``edgekit.tune.api.tune``), so that the name stays the
function whichever of its modules was imported first.
"""
from __future__ import annotations

import sys
import types
from typing import Any


class _TunePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from edgekit.tune.api import tune

        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _TunePackage
