"""Contracts in and out: ``contract=`` as a file (YAML, read safely, or JSON), a mapping or a ``Contract``,
and the JSON text every artifact carries."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgekit.contract.schema import Contract
from edgekit.errors import ContractError

MAX_CONTRACT_BYTES = 8 << 20
EXAMPLE = "docs/contract.md"


def load_contract(value: Contract | Mapping[str, Any] | str | Path | None) -> Contract | None:
    """The contract given as ``contract=``: a ``Contract``, a mapping, or a .yaml/.json file path."""
    if value is None or isinstance(value, Contract):
        return value
    if isinstance(value, Mapping):
        return parse_contract(dict(value), "contract=")
    path = Path(value)
    if not path.is_file():
        raise ContractError(f"contract file not found: {path}", "give a .yaml or .json contract file (see docs/contract.md)")
    document = _read_document(path)
    labels_file = document.pop("labels_file", None) if isinstance(document, dict) else None
    contract = parse_contract(document, str(path))
    if labels_file is not None:
        contract = _with_labels(contract, path.parent / str(labels_file))
    return contract


def _read_document(path: Path) -> Any:
    from edgekit.limits import check_regular_file

    check_regular_file(path, "contract")
    if path.stat().st_size > MAX_CONTRACT_BYTES:
        raise ContractError(f"{path} is {path.stat().st_size} bytes, more than a contract can be", "give the contract file itself")
    text = path.read_text(encoding="utf-8", errors="strict")
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ContractError(f"{path} is not valid JSON: {exc}", "fix the JSON syntax") from None
    from edgekit.errors import ProfileError
    from edgekit.yamlfiles import read_yaml_mapping

    try:
        return read_yaml_mapping(text, str(path), EXAMPLE)
    except ProfileError as exc:
        raise ContractError(exc.message, exc.hint) from None


def _with_labels(contract: Contract, file: Path) -> Contract:
    """``labels_file:`` (beside the contract file): one label per line, given to the first output."""
    if not file.is_file() or file.stat().st_size > MAX_CONTRACT_BYTES or not contract.outputs:
        raise ContractError(f"labels file {file} cannot be used", "give a text file of one label per line beside the "
                            "contract, and at least one output")
    labels = tuple(line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip())
    outputs = (contract.outputs[0].model_copy(update={"labels": labels}), *contract.outputs[1:])
    return contract.model_copy(update={"outputs": outputs})


def parse_contract(document: Any, where: str) -> Contract:
    """A validated ``Contract`` from a JSON document; an invalid one is a ``ContractError`` naming each field."""
    if not isinstance(document, dict):
        raise ContractError(f"{where} is not a contract (a mapping with inputs and outputs)", f"see {EXAMPLE}")
    document = {"schema": "edgekit.contract/1", **document}
    try:
        return Contract.model_validate(document)
    except ValidationError as exc:
        from edgekit.yamlfiles import explain

        raise ContractError(f"{where} is not a valid contract:\n{explain(exc, Contract)}", f"see {EXAMPLE}") from None


def contract_from_text(text: str | bytes, where: str) -> Contract:
    """The contract an artifact carries (its JSON text)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"the contract {where} carries is not JSON: {exc}", "rebuild the artifact with edgekit convert") from None
    return parse_contract(document, f"the contract {where} carries")


def contract_from_yaml(text: str, where: str = "the contract") -> Contract:
    """A contract from YAML (or JSON) text, read safely: what the GUI's contract editor holds."""
    if not text.strip():
        raise ContractError(f"{where} is empty", f"see {EXAMPLE}")
    from edgekit.errors import ProfileError
    from edgekit.yamlfiles import read_yaml_mapping

    try:
        document = read_yaml_mapping(text, where, EXAMPLE)
    except ProfileError as exc:
        raise ContractError(exc.message, exc.hint) from None
    document.pop("labels_file", None)
    return parse_contract(document, where)
