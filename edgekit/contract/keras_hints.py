"""What a Keras model's own preprocessing layers say about its input range, read from a ``.keras`` archive's
``config.json`` (the archive was checked by ``edgekit.sources.keras_safety`` when the build opened it; nothing
is loaded or run here).

A ``Rescaling`` layer right after an input that maps 0..255 onto [0, 1] or [-1, 1] means the model takes raw
pixels in [0, 255]; a ``Normalization`` layer there with means above 1 likewise, with means up to 1, [0, 1].
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

MAX_CONFIG_BYTES = 64 << 20
TOLERANCE = 0.02


def input_hints(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Per input name: ``{"range": (lo, hi), "origin": "..."}`` from the layer that reads it, where one says so."""
    config = _config(path)
    layers = (config or {}).get("config", {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return {}
    inputs = [layer.get("config", {}).get("name") or layer.get("name") for layer in layers
              if isinstance(layer, dict) and layer.get("class_name") == "InputLayer"]
    hints: dict[str, dict[str, Any]] = {}
    sequential = config.get("class_name") == "Sequential"
    for position, layer in enumerate(layers):
        if not isinstance(layer, dict) or layer.get("class_name") not in ("Rescaling", "Normalization"):
            continue
        source = inputs[0] if sequential and inputs and position == 1 else _reads(layer)
        if source in inputs:
            found = _range_of(layer)
            if found is not None:
                hints[source] = found
    return hints


def _config(path: str | Path | None) -> Any:
    if path is None or not zipfile.is_zipfile(str(path)):
        return None
    try:
        with zipfile.ZipFile(str(path)) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                return None
            return json.loads(archive.read(info).decode("utf-8"))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None


def _reads(layer: dict[str, Any]) -> str | None:
    """The name of the layer whose output ``layer`` takes (Keras 3 functional config)."""
    nodes = layer.get("inbound_nodes") or []
    try:
        argument = nodes[0]["args"][0]
        return argument["config"]["keras_history"][0]
    except (IndexError, KeyError, TypeError):
        return None


def _range_of(layer: dict[str, Any]) -> dict[str, Any] | None:
    config = layer.get("config") or {}
    if layer["class_name"] == "Rescaling":
        scale, offset = config.get("scale"), config.get("offset", 0.0)
        if not isinstance(scale, (int, float)) or not isinstance(offset, (int, float)):
            return None
        mapped = (offset, 255.0 * scale + offset)
        if any(abs(mapped[0] - lo) < TOLERANCE and abs(mapped[1] - hi) < TOLERANCE for lo, hi in ((0.0, 1.0), (-1.0, 1.0))):
            return {"range": (0.0, 255.0), "origin": f"Keras Rescaling layer (scale {scale:.6g}, offset {offset:.6g})"}
        return None
    mean = config.get("mean")
    values = [float(v) for v in (mean if isinstance(mean, list) else [mean]) if isinstance(v, (int, float))]
    if not values:
        return None
    return {"range": (0.0, 255.0) if max(values) > 1.0 else (0.0, 1.0),
            "origin": f"Keras Normalization layer (mean {', '.join(f'{v:.4g}' for v in values[:4])})"}
