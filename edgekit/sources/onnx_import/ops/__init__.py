"""ONNX op handlers, one small function per op type, registered in ``edgekit.sources.onnx_import.registry.OPS``.

A handler is ``handler(b: Builder, node: NodeView, *inputs) -> value or tuple of values``. An input is a
``torch.Tensor`` when it is a constant (an initializer or folded at import time) and a ``Dyn`` (a node of the
FX graph being built, with its static shape) otherwise; ``None`` stands for an omitted optional input.
Handlers call ``b.call(torch_fn, ...)``, which evaluates at once when every argument is constant (constant
folding) and emits an FX node otherwise. Importing the modules registers the handlers; only the names and
attributes are read without torch, from ``SUPPORT`` below.
"""
from __future__ import annotations

import importlib

_MODULES = ("elementwise", "nn", "tensor", "reduce", "resize", "rnn", "control")


def load_handlers() -> None:
    """Import every handler module (each registers its ops on import)."""
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")


def bind_torch() -> None:
    """Give every handler module the real ``torch`` and ``F`` in place of the lazy stand-ins.

    The helpers the handlers emit run again under ``torch.export`` (strict mode traces them with
    TorchDynamo, which must see plain torch functions, not an import on attribute access).
    """
    import sys

    import torch
    import torch.nn.functional as functional

    load_handlers()
    for name in ("_util", *_MODULES):
        module = sys.modules[f"{__name__}.{name}"]
        if hasattr(module, "torch"):
            module.torch = torch
        if hasattr(module, "F"):
            module.F = functional
