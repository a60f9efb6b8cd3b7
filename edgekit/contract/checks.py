"""Feeds held against an artifact's contract: a sample that breaks it is refused with the contract line."""
from __future__ import annotations

import numpy as np

from edgekit.contract.infer import SLACK
from edgekit.contract.schema import Contract
from edgekit.errors import ContractError

HINT = "preprocess the data as the contract says (edgekit inspect ARTIFACT shows it), or give raw images/WAV files"


def check_arrays(arrays: dict[str, np.ndarray], contract: Contract | None, what: str = "dataset") -> None:
    """Refuse data (per input, the first axis indexing samples) whose shape, layout, values or dtype break
    ``contract``; the error names the first sample and the contract line."""
    if contract is None:
        return
    for item in contract.inputs:
        if item.name not in arrays:
            continue
        array = np.asarray(arrays[item.name])
        if array.ndim == 0 or len(array) == 0:
            continue
        if item.shape is not None:
            _shape(array[0], item, contract, what)
        quantized_data = item.scale is not None and not np.issubdtype(array.dtype, np.floating)
        expected = item.value_range()
        if expected is not None and np.issubdtype(array.dtype, np.number) and not quantized_data:
            _values(array, item, expected, contract, what)
        if item.dtype is not None:
            _dtype(array, item, contract, what)


def _values(array: np.ndarray, item, expected: tuple[float, float], contract: Contract, what: str) -> None:
    rows = array.reshape(len(array), -1)
    lows, highs = rows.min(axis=1), rows.max(axis=1)
    slack = SLACK * (expected[1] - expected[0])
    bad = np.flatnonzero((lows < expected[0] - slack) | (highs > expected[1] + slack))
    if bad.size:
        index = int(bad[0])
        field = "range" if item.range is not None else "mean"
        raise ContractError(f"{what} sample {index} for input '{item.name}' holds values {float(lows[index]):.4g} .. "
                            f"{float(highs[index]):.4g} ({bad.size} of {len(array)} samples outside "
                            f"{expected[0]:.4g} .. {expected[1]:.4g}): it breaks the contract line "
                            f"{contract.line('inputs', item.name, field)}", HINT)


def _shape(array: np.ndarray, item, contract: Contract, what: str) -> None:
    shape = tuple(item.shape)
    given = array.shape if array.ndim == len(shape) else (1, *array.shape)
    if len(given) == len(shape) and all(d is None or d == g for d, g in zip(shape, given)):
        return
    swapped = len(shape) == 4 and len(given) == 4 and None not in shape[1:] and sorted(given[1:]) == sorted(shape[1:])
    field = "layout" if swapped and item.layout else "shape"
    raise ContractError(f"{what} sample 0 for input '{item.name}' has shape {tuple(array.shape)}: it breaks the contract "
                        f"line {contract.line('inputs', item.name, field)}"
                        + (f" (shape {contract.line('inputs', item.name, 'shape').split(' = ')[1]})" if field == "layout" else ""), HINT)


def _dtype(array: np.ndarray, item, contract: Contract, what: str) -> None:
    wanted = np.dtype(item.dtype)
    floats = np.issubdtype(array.dtype, np.floating)
    quantized = item.scale is not None and np.issubdtype(wanted, np.integer)
    if floats == np.issubdtype(wanted, np.floating) or (quantized and floats):
        return
    raise ContractError(f"{what} sample 0 for input '{item.name}' is {array.dtype}: it breaks the contract line "
                        f"{contract.line('inputs', item.name, 'dtype')}", HINT)
