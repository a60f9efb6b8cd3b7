"""The zoo's tests import its model list and harness from ``bench/`` (``zoo_models``, ``zoo``)."""
from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
