"""The contract's two steps in a build: completed and checked once the data are loaded, then written into every
staged artifact (and its reference snippets beside them) before the manifest."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.contract.infer import resolve
from edgekit.contract.schema import Contract
from edgekit.contract.stamp import build_hash, stamp_artifacts


def build_contract(plan: Any, source: Any, calibration: list[dict], validation: list[dict], run: dict[str, Any],
                   graph_hints: dict[str, dict[str, Any]] | None = None) -> Contract:
    """The build's contract from ``plan.contract`` (declared) and what ``source`` (its Keras preprocessing layers,
    or ``graph_hints``: a normalization in its PyTorch/ONNX graph) and the user's data (calibration and
    validation, never generated inputs) say; recorded in the manifest's ``run["contract"]``."""
    data = calibration + ([] if run.get("validation_data") in ("synthetic", "calibration") else validation)
    from edgekit.contract.keras_hints import input_hints

    hints = input_hints(source.path) if source.kind == "keras-file" else dict(graph_hints or {})
    contract = resolve(plan.contract, source, data, plan.options.output_kinds, plan.layout, hints)
    run["contract"] = contract.document()
    return contract


def stamp_build(artifacts: list[Any], contract: Contract | None, plan_config: dict[str, Any], out: Path,
                run: dict[str, Any]) -> list[Any]:
    """Artifacts with the contract written in (each its own I/O), and their snippets under ``out/snippets``,
    listed with their sha256 in the manifest's ``run["snippets"]`` (every file of a build folder is listed)."""
    stamped = stamp_artifacts(artifacts, contract, build_hash(plan_config))
    if contract is not None and stamped:
        from edgekit.contract.snippets import SNIPPETS, write_snippets
        from edgekit.session import files_digest

        written = write_snippets(stamped, Path(out) / SNIPPETS)
        run["snippets"] = {f"{SNIPPETS}/{file.name}": files_digest([file]) for file in written}
    return stamped
