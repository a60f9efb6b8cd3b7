"""Compatibility of a model with a device profile: op sets, the ops of sources and artifacts, the check itself.

``check`` is the public entry point (also ``edgekit.check``); everything here imports no framework at
module level.
"""
from __future__ import annotations

from edgekit.compat.report import BudgetCheck, CompatibilityReport, Finding, OpInfo, OpStats

__all__ = ["BudgetCheck", "CompatibilityReport", "Finding", "OpInfo", "OpStats"]
