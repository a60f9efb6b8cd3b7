"""Make the bundled example importable from the tests (it is the same code the README runs)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from digits_demo import digits_split, train_classifier  # noqa: E402

__all__ = ["digits_split", "train_classifier"]
