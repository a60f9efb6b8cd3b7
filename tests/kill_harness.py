"""bench/kill.py loaded as a module, so the tests and the benchmark run the same kill trials."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "bench" / "kill.py"
_spec = importlib.util.spec_from_file_location("edgekit_bench_kill", _PATH)
kill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kill)
