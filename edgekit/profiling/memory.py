"""Resident memory of this process: VmHWM (peak) or VmRSS (current), from /proc, getrusage elsewhere."""
from __future__ import annotations

import sys
from pathlib import Path


def rss(field: str) -> int | None:
    """``field`` ("VmHWM" or "VmRSS") of this process in bytes, or None where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    if field == "VmHWM":
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    return None
