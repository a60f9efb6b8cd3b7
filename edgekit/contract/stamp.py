"""Contracts written into artifacts (inside the build's staging folder) and read back, checked against the manifest.

The contract an artifact carries records two hashes that do not depend on any artifact: the source model's
sha256 and the *build hash* (sha256 of the manifest's ``config.plan``, canonical JSON). The manifest records
each artifact's contract too; ``verify`` compares the artifact's copy with the manifest's, so an edited range in
either is an error.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgekit.contract.io import contract_from_text, parse_contract
from edgekit.contract.schema import Contract
from edgekit.errors import ContractError


PLACE_KEYS = ("output_dir",)  # plan fields that say where, not what


def build_hash(plan_config: dict[str, Any]) -> str:
    """sha256 of the build's plan as the manifest stores it (``config.plan``), canonical JSON, without where the
    build was written (a rebuild elsewhere gives the same artifacts, byte for byte)."""
    plan = dict(plan_config)
    if isinstance(plan.get("options"), dict):
        plan["options"] = {key: value for key, value in plan["options"].items() if key not in PLACE_KEYS}
    text = json.dumps(plan, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def for_artifact(contract: Contract, artifact: Any, build: str | None) -> Contract:
    """``contract`` with the artifact's own I/O (shape, dtype, layout, quantization) and the build's hashes."""
    specs = {spec.name: spec for spec in artifact.inputs}
    ordered = list(artifact.inputs)

    def io(item: Any, spec: Any, with_layout: bool) -> Any:
        if spec is None:
            return item
        update = {"name": spec.name, "shape": tuple(spec.shape), "dtype": spec.dtype, "scale": spec.scale,
                  "zero_point": spec.zero_point}
        if with_layout and spec.layout not in ("other", "scalar"):
            update["layout"] = spec.layout
        return item.model_copy(update=update)

    inputs = tuple(io(item, specs.get(item.name) or (ordered[i] if i < len(ordered) else None), True)
                   for i, item in enumerate(contract.inputs))
    out_specs, out_ordered = {spec.name: spec for spec in artifact.outputs}, list(artifact.outputs)
    outputs = tuple(io(item, out_specs.get(item.name) or (out_ordered[i] if i < len(out_ordered) else None), False)
                    for i, item in enumerate(contract.outputs))
    updated = contract.model_copy(update={"inputs": inputs, "outputs": outputs, "build_hash": build,
                                          "format": artifact.format, "precision": artifact.precision})
    return parse_contract(updated.document(), "the artifact's contract")  # validated once more, as it will be read


def write(path: Path, fmt: str, contract: Contract) -> list[Path]:
    """Write ``contract`` into the artifact at ``path`` (a staged file) with its format's carrier."""
    from edgekit.formats import get_format

    return get_format(fmt).member("write_contract")(Path(path), contract.to_json())


def read(path: str | Path, fmt: str | None = None) -> Contract | None:
    """The contract the artifact at ``path`` carries (its format sniffed when not given), or None."""
    from edgekit.formats import get_format
    from edgekit.formats.sniff import sniff_artifact

    found = get_format(fmt) if fmt else sniff_artifact(Path(path))
    if found.read_contract is None:
        return None
    text = found.member("read_contract")(Path(path))
    return None if text is None else contract_from_text(text, Path(path).name)


def stamp_artifacts(artifacts: list[Any], contract: Contract | None, build: str) -> list[Any]:
    """Every artifact with ``contract`` written into it and recorded on it; size and sha256 taken again."""
    if contract is None:
        return artifacts
    from edgekit.session import files_digest

    stamped = []
    for artifact in artifacts:
        mine = for_artifact(contract, artifact, build)
        try:
            written = write(Path(artifact.path), artifact.format, mine)
        except ContractError as exc:  # a file its carrier cannot rewrite: said on the artifact, never half-written
            stamped.append(artifact.model_copy(update={"notes": (*artifact.notes, f"no contract written: {exc.message}")}))
            continue
        files = list(dict.fromkeys([*artifact.files, *map(str, written)]))
        paths = [Path(f) for f in files]
        stamped.append(artifact.model_copy(update={
            "contract": mine, "files": tuple(files), "size_bytes": sum(p.stat().st_size for p in paths),
            "sha256": files_digest(paths)}))
    return stamped


def verify(path: str | Path, entry: dict[str, Any] | None, manifest: dict[str, Any] | None) -> Contract | None:
    """The artifact's contract, checked against its manifest entry and the manifest's source and plan.

    Raises ``ContractError`` when the artifact's copy differs from the manifest's, when only one of them has a
    contract, or when the hashes it records are not the build's. Without a manifest entry, the artifact's own.
    """
    carried = read(path)
    if entry is None or manifest is None:
        return carried
    recorded = entry.get("contract")
    name = Path(path).name
    if recorded is None and carried is None:
        return None
    if recorded is None or carried is None:
        what = (f"{name} has no contract but the manifest has one" if carried is None
                else f"the manifest has no contract for {name} but the artifact carries one")
        raise ContractError(what, "the artifact and its manifest do not belong together: rebuild, or copy the whole build folder")
    expected = parse_contract(recorded, "the manifest's contract")
    if carried != expected:
        raise ContractError(f"the contract in {name} differs from the manifest's: {diff(expected, carried)}",
                            "the artifact or the manifest was edited after the build: rebuild it with edgekit convert")
    source = (manifest.get("source") or {}).get("sha256")
    plan = (manifest.get("config") or {}).get("plan")
    if carried.source_sha256 != source or (plan is not None and carried.build_hash != build_hash(plan)):
        raise ContractError(f"the contract in {name} records another build (source {str(carried.source_sha256)[:12]}, "
                            f"build {str(carried.build_hash)[:12]}) than its manifest",
                            "rebuild the artifacts, or copy the whole build folder together")
    return carried


def diff(expected: Contract, actual: Contract) -> str:
    """The first fields that differ, as ``path: manifest -> artifact``."""
    changes: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{where}.{key}" if where else key)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(x, dict) for x in a):
            for index, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}.{x.get('name', index)}")
        elif a != b:
            changes.append(f"{where}: {json.dumps(a)} -> {json.dumps(b)}")

    walk(expected.document(), actual.document(), "")
    return "; ".join(changes[:3]) or "(same fields, different bytes)"


def read_for_run(path: Path, fmt: str) -> Contract | None:
    """The contract where the artifact runs (the profiling child, the agent): None where the reader's package
    is not installed on the device (the host checked the artifact against its manifest already)."""
    from edgekit.errors import MissingDependencyError

    try:
        return read(path, fmt)
    except (MissingDependencyError, ImportError):
        return None


def verify_beside(path: str | Path) -> Contract | None:
    """``verify`` the artifact at ``path`` against the manifest in its folder, where there is one (else None)."""
    from edgekit.manifest import MANIFEST_NAME, read_manifest

    path = Path(path)
    if not (path.parent / MANIFEST_NAME).is_file():
        return None  # nothing to compare with: where it runs, the artifact's own contract applies
    manifest = read_manifest(path.parent)
    entry = next((e for e in manifest.get("artifacts", []) if isinstance(e, dict)
                  and Path(str(e.get("path", ""))).name == path.name), None)
    return verify(path, entry, manifest)
