"""``torch`` and ``torch.nn.functional`` imported on first use, so the op table loads without torch."""
from __future__ import annotations

import importlib
from typing import Any


class _Lazy:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


torch: Any = _Lazy("torch")
F: Any = _Lazy("torch.nn.functional")
