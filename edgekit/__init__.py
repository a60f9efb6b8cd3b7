"""edgekit: convert, validate and profile models for edge devices.

The public API is loaded lazily so that ``import edgekit`` imports no TensorFlow, PyTorch or OpenVINO.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgekit._version import __version__
from edgekit.errors import EdgekitError

#: public name -> module (the attribute of the same name), or (module, attribute) for a public alias
_LAZY: dict[str, str | tuple[str, str]] = {
    "convert": "edgekit.pipeline",
    "BuildPlan": "edgekit.plan",
    "load_build": "edgekit.manifest",
    "parse_shape": "edgekit.shapes",
    "shape_text": "edgekit.specs",
    "ProfileReport": "edgekit.profiling",
    "save_combined_html": "edgekit.profiling.html",
    "AgentClient": "edgekit.agent.client",
    "discover_agents": ("edgekit.agent.discovery", "browse"),
    "data_report": "edgekit.calibration_report",
    "DataReport": "edgekit.data_checks",
    "preview_data": "edgekit.dataset",
    "DataPreview": "edgekit.dataset",
    "check": "edgekit.compat.check",
    "inspect": "edgekit.inspection",
    "load_profile": "edgekit.profiles",
    "list_profiles": "edgekit.profiles",
    "DeviceProfile": "edgekit.profiles",
    "QuantScheme": "edgekit.options",
    "Build": "edgekit.specs",
    "FORMATS": "edgekit.specs",
    "Artifact": "edgekit.specs",
    "ModelSource": "edgekit.specs",
    "TensorSpec": "edgekit.specs",
    "ValidationResult": "edgekit.specs",
    "ProgressEvent": "edgekit.progress",
    "read_manifest": "edgekit.manifest",
    "open_runner": "edgekit.formats.runner",
    "devices": "edgekit.formats.devices",
    "DeviceEntry": "edgekit.formats.devices",
    "host_info": "edgekit.formats.devices",
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
    from edgekit.agent.client import AgentClient
    from edgekit.agent.discovery import browse as discover_agents
    from edgekit.calibration_report import data_report
    from edgekit.compat.check import check
    from edgekit.data_checks import DataReport
    from edgekit.dataset import DataPreview, preview_data
    from edgekit.divergence import debug
    from edgekit.formats.devices import DeviceEntry, devices, host_info
    from edgekit.formats.runner import open_runner
    from edgekit.inspection import inspect
    from edgekit.manifest import load_build, read_manifest
    from edgekit.optimize.recipe import load_recipe
    from edgekit.optimize.report import OptimizationReport
    from edgekit.optimize.steps import distill, prune, qat
    from edgekit.options import QuantScheme
    from edgekit.pipeline import convert
    from edgekit.plan import BuildPlan
    from edgekit.profiles import DeviceProfile, list_profiles, load_profile
    from edgekit.profiling import ProfileReport
    from edgekit.profiling.html import save_combined_html
    from edgekit.progress import ProgressEvent
    from edgekit.shapes import parse_shape
    from edgekit.specs import FORMATS, Artifact, Build, ModelSource, TensorSpec, ValidationResult, shape_text


def __getattr__(name: str) -> Any:
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
    module, attribute = entry if isinstance(entry, tuple) else (entry, name)
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
