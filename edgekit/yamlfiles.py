"""Data files in YAML (device profiles, op sets): safe loading and validation errors that name the field."""
from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from edgekit.errors import ProfileError, did_you_mean


def read_yaml_mapping(text: str, where: str, example: str) -> dict[str, Any]:
    """Safe-load YAML ``text`` that must hold a mapping; errors name ``where`` and point at ``example``."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{where} is not valid YAML: {exc}", "fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must hold a mapping of fields", f"see {example} for an example")
    return raw


def explain(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per invalid field: its dotted path and what is allowed (with a 'did you mean' for typos)."""
    fields = list(model.model_fields)
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown field; {did_you_mean(str(error['loc'][-1]), fields)}allowed: {', '.join(fields)}"
        lines.append(f"  field '{loc}': {message}")
    return "\n".join(lines)
