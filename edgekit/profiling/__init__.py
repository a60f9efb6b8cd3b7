"""Profiling: latency, memory, per-op times and accuracy of artifacts, measured on the device itself."""
from __future__ import annotations

from edgekit.profiling.api import profile
from edgekit.profiling.report import ArtifactProfile, ProfileReport

__all__ = ["ArtifactProfile", "ProfileReport", "profile"]
