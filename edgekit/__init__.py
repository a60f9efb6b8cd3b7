"""edgekit: convert, validate and profile models for edge devices.

The public API is loaded lazily so that ``import edgekit`` imports no TensorFlow, PyTorch or OpenVINO.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgekit._version import __version__
from edgekit.errors import EdgekitError

_LAZY = {
    "convert": "edgekit.pipeline",
    "data_report": "edgekit.calibration_report",
    "check": "edgekit.compat.check",
    "inspect": "edgekit.inspection",
    "load_profile": "edgekit.profiles",
    "list_profiles": "edgekit.profiles",
    "DeviceProfile": "edgekit.profiles",
    "QuantScheme": "edgekit.options",
    "Build": "edgekit.specs",
    "Artifact": "edgekit.specs",
    "ModelSource": "edgekit.specs",
    "TensorSpec": "edgekit.specs",
    "ValidationResult": "edgekit.specs",
    "ProgressEvent": "edgekit.progress",
    "read_manifest": "edgekit.manifest",
    "open_runner": "edgekit.runtime",
    "profile": "edgekit.profiling",
    "debug": "edgekit.divergence",
    "prune": "edgekit.optimize.steps",
    "qat": "edgekit.optimize.steps",
    "distill": "edgekit.optimize.steps",
    "load_recipe": "edgekit.optimize.recipe",
    "OptimizationReport": "edgekit.optimize.report",
}

__all__ = ["EdgekitError", "__version__", *_LAZY]

if TYPE_CHECKING:
    from edgekit.compat.check import check
    from edgekit.calibration_report import data_report
    from edgekit.divergence import debug
    from edgekit.inspection import inspect
    from edgekit.manifest import read_manifest
    from edgekit.optimize.recipe import load_recipe
    from edgekit.optimize.report import OptimizationReport
    from edgekit.optimize.steps import distill, prune, qat
    from edgekit.options import QuantScheme
    from edgekit.pipeline import convert
    from edgekit.profiles import DeviceProfile, list_profiles, load_profile
    from edgekit.progress import ProgressEvent
    from edgekit.runtime import open_runner
    from edgekit.specs import Artifact, Build, ModelSource, TensorSpec, ValidationResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
