"""``edgekit.inspect_artifact``: what an artifact file is and what it expects, read from its content.

The format is sniffed (``edgekit.formats.sniff``), the I/O specs with dtype and quantization parameters come
from the artifact opened in its runtime (or, without one, from the file), the stored precision from the file;
inside a build folder its manifest entry, and its deployment contract, checked against the manifest's copy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from edgekit.contract.schema import Contract
from edgekit.specs import TensorSpec


class ArtifactInfo(BaseModel):
    """One artifact as ``edgekit inspect`` shows it."""

    model_config = ConfigDict(frozen=True)

    path: str
    format: str
    title: str
    files: tuple[str, ...]
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    specs_from: str  # "runtime <name>" or "file" (no quantization parameters then)
    stored_precision: str | None = None
    manifest_entry: dict[str, Any] | None = None  # without its contract (shown as ``contract``)
    contract: Contract | None = None
    contract_status: str = "none"  # "matches the manifest", "no manifest", "none", or the mismatch


def inspect_artifact(path: str | Path) -> ArtifactInfo:
    """Sniff and describe the artifact at ``path`` (see the module doc); a contract that differs from the
    manifest's is reported in ``contract_status``, not raised."""
    from edgekit.errors import ContractError
    from edgekit.formats.sniff import sniff_artifact

    path = Path(path)
    fmt = sniff_artifact(path)
    files = fmt.files(path)
    inputs, outputs, specs_from = _specs(path, fmt)
    entry, manifest = _manifest_entry(path)
    contract, status = None, "none"
    try:
        from edgekit.contract.stamp import read, verify

        contract = verify(path, entry, manifest) if entry is not None else read(path, fmt.name)
        status = ("matches the manifest" if entry is not None else "no manifest") if contract is not None else "none"
    except ContractError as exc:
        from edgekit.contract.stamp import read

        contract, status = read(path, fmt.name), exc.message
    precision = fmt.member("stored_precision")(path) if fmt.stored_precision else None
    shown = {k: v for k, v in (entry or {}).items() if k != "contract"} or None
    return ArtifactInfo(path=str(path), format=fmt.name, title=fmt.title, files=tuple(map(str, files)),
                        size_bytes=sum(f.stat().st_size for f in files), inputs=inputs, outputs=outputs,
                        specs_from=specs_from, stored_precision=precision, manifest_entry=shown, contract=contract,
                        contract_status=status)


def is_artifact(path: str | Path) -> bool:
    """Whether ``edgekit inspect`` shows ``path`` as an artifact: a file of an artifact format that is not a model
    source (TFLite, OpenVINO IR, ExecuTorch), or an ONNX file inside a build folder or carrying a contract."""
    from edgekit.formats.sniff import detect, read_head

    path = Path(path)
    if not path.is_file():
        return False
    fmt = detect(read_head(path), path)
    if fmt is None:
        return False
    if fmt.source_framework is None:
        return True
    from edgekit.contract.stamp import read
    from edgekit.manifest import MANIFEST_NAME

    return (path.parent / MANIFEST_NAME).is_file() or read(path, fmt.name) is not None


def _specs(path: Path, fmt: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], str]:
    """I/O specs from the runtime (with quantization parameters), or the inputs read from the file."""
    spec = fmt.default_runner()
    if not spec.missing():
        from edgekit.formats.runner import open_runner

        runner = open_runner(path, fmt.name)
        return tuple(runner.inputs), tuple(runner.outputs), f"runtime {runner.runtime}"
    inputs = tuple(fmt.member("read_inputs")(path)) if fmt.read_inputs else ()
    return inputs, (), "file"


def _manifest_entry(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from edgekit.manifest import MANIFEST_NAME, read_manifest

    if not (path.parent / MANIFEST_NAME).is_file():
        return None, None
    manifest = read_manifest(path.parent)
    entry = next((e for e in manifest.get("artifacts", []) if isinstance(e, dict)
                  and Path(str(e.get("path", ""))).name == path.name), None)
    return entry, manifest if entry is not None else None
