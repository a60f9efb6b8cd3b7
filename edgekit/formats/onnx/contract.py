"""The deployment contract in an .onnx file: the ``metadata_props`` entry ``edgekit.contract`` (JSON).
The model is read without its external data and written back as the same graph, external references kept."""
from __future__ import annotations

from pathlib import Path

from edgekit.atomic import atomic_write_bytes
from edgekit.errors import ModelFileError

KEY = "edgekit.contract"


def _load(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a truncated or foreign file
        raise ModelFileError(f"{path} is not a readable ONNX model: {type(exc).__name__}", "give an .onnx file") from None


def write_contract(path: Path, text: str) -> list[Path]:
    """Store ``text`` under ``metadata_props[edgekit.contract]`` (replacing an earlier one)."""
    model = _load(path)
    kept = [p for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = KEY, text
    atomic_write_bytes(Path(path), model.SerializeToString())
    return [Path(path)]


def read_contract(path: Path) -> str | None:
    """The contract JSON the model carries, or None (read with onnx, or ONNX Runtime on a device without onnx)."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return session.get_modelmeta().custom_metadata_map.get(KEY)
    return next((p.value for p in _load(path).metadata_props if p.key == KEY), None)
