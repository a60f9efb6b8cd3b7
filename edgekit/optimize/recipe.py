"""Optimization recipes: the steps (and optionally the data) of a build, kept as a YAML or TOML file.

```yaml
optimizations:
  - prune: {sparsity: 0.5, structured: true, epochs: 4}
  - distill: {teacher: teacher.keras, temperature: 4}
  - qat: {epochs: 3}
train_data: train.npz     # optional; .npz with arrays x and y, relative to this file
val_data: val.npz
```
In TOML, each ``[[optimizations]]`` table names its step with ``kind = "prune"``. Files are read with safe
loaders only; paths inside are resolved against the recipe's folder.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgekit.errors import InvalidOptionError
from edgekit.optimize import steps as step_module
from edgekit.optimize.steps import Step

_FACTORIES = {"prune": step_module.PruneStep, "qat": step_module.QatStep, "distill": step_module.DistillStep}
_TOP_LEVEL = ("optimizations", "train_data", "val_data")
MAX_RECIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class Recipe:
    """Steps in order, and the data files the recipe names (absolute paths), if any."""

    steps: tuple[Step, ...]
    train_data: Path | None = None
    val_data: Path | None = None


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe file (YAML or TOML, told apart by content) into checked steps."""
    path = Path(path)
    if not path.is_file():
        raise InvalidOptionError(f"recipe file not found: {path}", "give a .yaml or .toml recipe file")
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise InvalidOptionError(f"{path} is too large for a recipe ({path.stat().st_size} bytes)", "a recipe is a short text file")
    raw = _parse(path.read_text(encoding="utf-8", errors="replace"), path)
    unknown = sorted(set(raw) - set(_TOP_LEVEL))
    if unknown:
        raise InvalidOptionError(f"{path}: unknown field(s) {', '.join(unknown)}", f"a recipe has: {', '.join(_TOP_LEVEL)}")
    items = raw.get("optimizations")
    if not isinstance(items, list) or not items:
        raise InvalidOptionError(f"{path} lists no optimizations", "add an 'optimizations' list, e.g. - prune: {sparsity: 0.5}")
    steps = tuple(_step(item, index, path) for index, item in enumerate(items))
    return Recipe(steps, _data_path(raw.get("train_data"), path), _data_path(raw.get("val_data"), path))


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as yaml_error:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            raise InvalidOptionError(f"{path} is neither valid YAML nor valid TOML: {yaml_error}", "fix the syntax") from None
    if isinstance(raw, str | None):  # TOML that YAML read as a scalar, or an empty file
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            raise InvalidOptionError(f"{path} holds no recipe", "see edgekit/optimize/recipe.py for the format") from None
    if not isinstance(raw, dict):
        raise InvalidOptionError(f"{path} must hold a mapping with an 'optimizations' list", "see the recipe format in the README")
    return raw


def _step(item: Any, index: int, path: Path) -> Step:
    where = f"{path}: optimizations[{index}]"
    if isinstance(item, dict) and "kind" in item:
        kind, options = item["kind"], {k: v for k, v in item.items() if k != "kind"}
    elif isinstance(item, dict) and len(item) == 1:
        kind, options = next(iter(item.items()))
        options = options or {}
    elif isinstance(item, str):
        kind, options = item, {}
    else:
        raise InvalidOptionError(f"{where} is not a step", "write each step as `- prune: {sparsity: 0.5}` (or kind = \"prune\" in TOML)")
    factory = _FACTORIES.get(kind)
    if factory is None or not isinstance(options, dict):
        raise InvalidOptionError(f"{where}: unknown step {kind!r}", f"steps: {', '.join(_FACTORIES)}")
    if kind == "distill" and isinstance(options.get("teacher"), str):
        options = {**options, "teacher": str(_data_path(options["teacher"], path))}
    try:
        return step_module.make_step(factory, options)
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"{where}: {exc.message}", exc.hint) from None


def _data_path(value: Any, recipe: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOptionError(f"{recipe}: data and teacher paths must be strings, got {value!r}", "give a path relative to the recipe")
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (recipe.parent / candidate).resolve()
