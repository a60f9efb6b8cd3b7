"""The route table checks itself: every converter module is registered and every entry imports."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import tomllib
from pathlib import Path

import edgekit.converters
import pytest

from edgekit.errors import UnsupportedRouteError
from edgekit.routes import ROUTES, Route, RouteOutput, RouteRequest, build_table, find_route

CONVERTERS_DIR = Path(edgekit.converters.__file__).parent
ROOT = Path(__file__).resolve().parents[1]


def test_every_converter_module_is_in_the_table():
    modules = {p.stem for p in CONVERTERS_DIR.glob("*.py") if not p.stem.startswith("_")}
    registered = {route.name for route in ROUTES.values()}
    assert modules == registered


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_entry_imports_and_has_the_convert_contract(key):
    module = importlib.import_module(ROUTES[key].module)
    parameters = list(inspect.signature(module.convert).parameters.values())
    assert [p.name for p in parameters] == ["request"] and parameters[0].annotation in ("RouteRequest", RouteRequest)
    assert inspect.signature(module.convert).return_annotation in ("RouteOutput", RouteOutput)
    assert ROUTES[key].load() is module.convert
    assert (module.__doc__ or "").strip() and (module.convert.__doc__ or "").strip()
    assert ROUTES[key].name == f"{key[0].rstrip('23')}_{key[1]}"  # converters/<framework>_<format>.py (keras2 and keras3 share one)


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_declared_requirement_exists_and_its_extra_is_in_pyproject(key):
    route = ROUTES[key]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"keras2": "tf_keras", "keras3": "keras", "torch": "torch", "onnx": "onnx"}[key[0]] in route.requires
    for module in route.requires:
        assert importlib.util.find_spec(module) is not None, f"{key}: {module} is not an importable module"
    assert (route.extra or "convert") in extras and route.install == f"pip install 'edgekit[{route.extra or 'convert'}]'"
    assert {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai_edge_litert",
            "executorch": "executorch"}[key[1]] in route.requires


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
