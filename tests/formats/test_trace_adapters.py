"""The trace adapters check themselves: each format's ``trace`` resolves to ``trace(path, feeds)`` or is refused by name."""
from __future__ import annotations

import inspect

import pytest

from edgekit.errors import EdgekitError
from edgekit.formats import FORMATS, get_format

TRACED = [name for name in FORMATS if get_format(name).trace is not None]
UNTRACED = [name for name in FORMATS if get_format(name).trace is None]


def test_the_table_has_both_kinds():
    assert sorted(TRACED) == ["onnx", "openvino", "tflite"] and UNTRACED == ["executorch"]


@pytest.mark.parametrize("name", TRACED)
def test_every_trace_adapter_is_a_callable_of_path_and_feeds(name):
    trace = get_format(name).member("trace")
    assert callable(trace)
    assert list(inspect.signature(trace).parameters)[:2] == ["path", "feeds"]


@pytest.mark.parametrize("name", UNTRACED)
def test_a_format_without_trace_says_not_available(name):
    with pytest.raises(EdgekitError, match=f"not available for {name}"):
        get_format(name).member("trace")
