"""The route table checks itself: every converter module is registered and every entry imports."""
from __future__ import annotations

import importlib
from pathlib import Path

import edgekit.converters
import pytest

from edgekit.errors import UnsupportedRouteError
from edgekit.routes import ROUTES, Route, build_table, find_route

CONVERTERS_DIR = Path(edgekit.converters.__file__).parent


def test_every_converter_module_is_in_the_table():
    modules = {p.stem for p in CONVERTERS_DIR.glob("*.py") if not p.stem.startswith("_")}
    registered = {route.name for route in ROUTES.values()}
    assert modules == registered


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_entry_imports_and_has_convert(key):
    module = importlib.import_module(ROUTES[key].module)
    assert callable(module.convert)


def test_a_duplicate_key_raises():
    route = Route("edgekit.converters.onnx_onnx")
    with pytest.raises(ValueError, match="onnx->onnx is registered twice"):
        build_table([(("onnx", "onnx"), route), (("onnx", "onnx"), route)])


def test_unknown_route_names_the_routes_that_exist():
    with pytest.raises(UnsupportedRouteError) as info:
        find_route("jax", "tflite", "fp32")
    assert "no converter from jax to tflite" in info.value.message
    assert "jax models convert to: nothing" in info.value.hint
    assert "keras3->tflite" in info.value.hint and "onnx->tflite" in info.value.hint


def test_unsupported_precision_lists_the_supported_ones():
    with pytest.raises(UnsupportedRouteError) as info:
        find_route("onnx", "onnx", "dynamic")
    assert "fp32, fp16, int8" in info.value.hint
