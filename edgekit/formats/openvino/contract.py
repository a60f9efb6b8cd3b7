"""The deployment contract in an OpenVINO IR: the model's ``rt_info`` entry ``edgekit_contract`` (JSON),
set with ``Model.set_rt_info`` and saved with ``openvino.save_model`` (weights kept as stored: no fp16
compression), so it round-trips through ``read_model``."""
from __future__ import annotations

import tempfile
from pathlib import Path

from edgekit.atomic import publish_files

KEY = "edgekit_contract"


def write_contract(path: Path, text: str) -> list[Path]:
    """Store ``text`` in the IR's rt_info; the .xml and .bin are rewritten together, atomically."""
    import openvino as ov

    path = Path(path)
    model = ov.Core().read_model(str(path))
    model.set_rt_info(text, [KEY])
    with tempfile.TemporaryDirectory(prefix=".contract-", dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        ov.save_model(model, str(staged), compress_to_fp16=False)
        bin_file = staged.with_suffix(".bin")
        publish_files([(bin_file, path.with_suffix(".bin")), (staged, path)])  # weights first, the .xml last
    return [path, path.with_suffix(".bin")]


def read_contract(path: Path) -> str | None:
    """The contract JSON the IR carries, or None."""
    import openvino as ov

    model = ov.Core().read_model(str(path))
    if not model.has_rt_info([KEY]):
        return None
    return str(model.get_rt_info([KEY]).astype(str))
