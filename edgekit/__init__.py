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
    "model_graph": "edgekit.graph",
    "ModelGraph": "edgekit.graph",
    "CompatibilityReport": "edgekit.compat.report",
    "DivergenceReport": "edgekit.divergence.report",
    "inspect": "edgekit.inspection",
    "inspect_artifact": "edgekit.artifact_info",
    "ArtifactInfo": "edgekit.artifact_info",
    "is_artifact": "edgekit.artifact_info",
    "Contract": "edgekit.contract",
    "load_contract": "edgekit.contract.io",
    "contract_from_yaml": "edgekit.contract.io",
    "read_contract": ("edgekit.contract.stamp", "read"),
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
    "convert_plan": "edgekit.plan_file",
    "tune": ("edgekit.tune.api", "tune"),
    "select_trial": ("edgekit.tune.promote", "select"),
    "TuneResult": "edgekit.tune.report",
}

__all__ = ["EdgekitError", "__version__", *_LAZY]

if TYPE_CHECKING:
    from edgekit.agent.client import AgentClient
    from edgekit.agent.discovery import browse as discover_agents
    from edgekit.artifact_info import ArtifactInfo, inspect_artifact, is_artifact
    from edgekit.calibration_report import data_report
    from edgekit.compat.check import check
    from edgekit.compat.report import CompatibilityReport
    from edgekit.contract import Contract
    from edgekit.contract.io import contract_from_yaml, load_contract
    from edgekit.contract.stamp import read as read_contract
    from edgekit.data_checks import DataReport
    from edgekit.dataset import DataPreview, preview_data
    from edgekit.divergence import debug
    from edgekit.divergence.report import DivergenceReport
    from edgekit.formats.devices import DeviceEntry, devices, host_info
    from edgekit.formats.runner import open_runner
    from edgekit.graph import ModelGraph, model_graph
    from edgekit.inspection import inspect
    from edgekit.manifest import load_build, read_manifest
    from edgekit.optimize.recipe import load_recipe
    from edgekit.optimize.report import OptimizationReport
    from edgekit.optimize.steps import distill, prune, qat
    from edgekit.options import QuantScheme
    from edgekit.pipeline import convert
    from edgekit.plan import BuildPlan
    from edgekit.plan_file import convert_plan
    from edgekit.profiles import DeviceProfile, list_profiles, load_profile
    from edgekit.profiling import ProfileReport
    from edgekit.profiling.html import save_combined_html
    from edgekit.progress import ProgressEvent
    from edgekit.shapes import parse_shape
    from edgekit.specs import FORMATS, Artifact, Build, ModelSource, TensorSpec, ValidationResult, shape_text
    from edgekit.tune.api import tune
    from edgekit.tune.promote import select as select_trial
    from edgekit.tune.report import TuneResult


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
