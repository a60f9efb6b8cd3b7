"""The deployment contract of an ExecuTorch program: a sidecar ``<program>.pte.contract.json`` beside it.

A ``.pte`` has no free-form metadata field (``program.fbs``: named data lives in segments the runtime maps),
so edgekit does not rewrite the program: the contract is a companion file of the artifact (listed with it in
the manifest, copied and uploaded with it) and recorded in the manifest.
"""
from __future__ import annotations

from pathlib import Path

from edgekit.atomic import atomic_write_text

SUFFIX = ".contract.json"
MAX_BYTES = 8 << 20


def sidecar(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + SUFFIX)


def companions(path: Path) -> list[Path]:
    """The contract sidecar, where there is one (a program without a contract has no companion)."""
    file = sidecar(path)
    return [file] if file.is_file() else []


def write_contract(path: Path, text: str) -> list[Path]:
    file = sidecar(path)
    atomic_write_text(file, text)
    return [Path(path), file]


def read_contract(path: Path) -> str | None:
    file = sidecar(path)
    if not file.is_file():
        return None
    if file.stat().st_size > MAX_BYTES:
        from edgekit.errors import ContractError

        raise ContractError(f"{file.name} is {file.stat().st_size} bytes, more than a contract can be", "rebuild the artifact")
    return file.read_text(encoding="utf-8")
