"""Control flow: ``If`` whose condition folds to a constant is inlined (its taken branch); others are refused."""
from __future__ import annotations

from typing import Any

from edgekit.sources.onnx_import.fold import inline_if
from edgekit.sources.onnx_import.registry import op


@op("If", since=1, attrs=("else_branch", "then_branch"))
def if_op(b: Any, node: Any, condition: Any) -> tuple[Any, ...]:
    return inline_if(b, node, condition)
