"""The optimization backend table checks itself: every entry imports and defines what the chain runner calls."""
from __future__ import annotations

import importlib
import inspect
import typing

import pytest

from edgekit.errors import InvalidOptionError
from edgekit.optimize.backend import Backend
from edgekit.optimize.run import BACKENDS, backend_for, backend_table
from edgekit.specs import Framework

CONTRACT = [name for name, member in vars(Backend).items() if inspect.isfunction(member) and not name.startswith("_")]


def test_the_contract_is_what_the_chain_runner_calls():
    assert sorted(CONTRACT) == ["derive_student", "distill", "fit", "load_teacher", "predict", "prepare", "prune", "qat", "stats"]


def test_keys_are_frameworks_that_exist():
    assert set(BACKENDS) <= set(typing.get_args(Framework))
    assert sorted(BACKENDS) == ["keras2", "keras3", "torch"]


@pytest.mark.parametrize("framework", sorted(BACKENDS))
def test_every_entry_imports_and_implements_the_contract(framework):
    module = backend_for(framework)
    assert module is importlib.import_module(BACKENDS[framework])
    for name in CONTRACT:
        expected = [p.name for p in inspect.signature(getattr(Backend, name)).parameters.values()][1:]  # without self
        assert [p.name for p in inspect.signature(getattr(module, name)).parameters.values()] == expected, name


def test_an_unknown_framework_names_the_ones_that_exist():
    with pytest.raises(InvalidOptionError, match="backends exist for keras2, keras3, torch"):
        backend_for("onnx")


def test_a_framework_registered_twice_is_refused():
    with pytest.raises(ValueError, match="optimization backend 'torch' is registered twice"):
        backend_table([("torch", "a"), ("torch", "b")])
