"""Every format's contract carrier: written, the artifact still loads and gives the same outputs, read back
identical; an edited contract is caught against the manifest's copy."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.contract import stamp
from edgekit.contract.schema import Contract, InputContract, OutputContract
from edgekit.errors import ContractError
from edgekit.formats import get_format
from edgekit.formats.runner import open_runner
from tests.formats import models

CONTRACT = Contract(
    inputs=(InputContract(name="x", kind="tensor", range=(-4.0, 4.0)), InputContract(name="k", kind="tensor")),
    outputs=(OutputContract(name="y", kind="tensor"),), source_sha256="ab" * 32, build_hash="cd" * 32)
FEED = {"x": models.X, "k": models.K}


def _make(fmt: str, folder: Path) -> Path:
    if fmt == "tflite":
        return models.tflite_model(folder / "m.tflite")
    if fmt == "onnx":
        return models.onnx_model(folder / "m.onnx")
    if fmt == "openvino":
        return models.openvino_ir(models.onnx_model(folder / "src.onnx"), folder / "m.xml")
    return models.executorch_model(folder / "m.pte")


FORMATS = ["tflite", "onnx", "openvino", pytest.param("executorch", marks=pytest.mark.slow)]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_written_contract_reads_back_identical_and_the_artifact_still_runs(fmt, tmp_path):
    path = _make(fmt, tmp_path)
    before = open_runner(path).run(FEED)
    assert stamp.read(path) is None
    written = stamp.write(path, fmt, CONTRACT)
    assert path in written
    assert stamp.read(path) == CONTRACT
    after = open_runner(path).run(FEED)
    np.testing.assert_array_equal(after["y"], before["y"])
    np.testing.assert_array_equal(after["y"], models.Y)
    again = CONTRACT.model_copy(update={"precision": "fp32"})
    stamp.write(path, fmt, again)  # writing twice replaces the first contract
    assert stamp.read(path) == again
    assert get_format(fmt).files(path)  # companions (the IR's .bin, the .pte's sidecar) present


def test_openvino_weights_are_kept_as_stored(tmp_path):
    xml = _make("openvino", tmp_path)
    weights = _digest(xml.with_suffix(".bin"))
    stamp.write(xml, "openvino", CONTRACT)
    assert _digest(xml.with_suffix(".bin")) == weights


def test_executorch_program_is_not_rewritten(tmp_path):
    pytest.importorskip("executorch")
    pte = _make("executorch", tmp_path)
    digest = _digest(pte)
    assert stamp.write(pte, "executorch", CONTRACT) == [pte, tmp_path / "m.pte.contract.json"]
    assert _digest(pte) == digest
    assert get_format("executorch").files(pte) == (pte, tmp_path / "m.pte.contract.json")


def _manifest(contract: Contract) -> tuple[dict, dict]:
    plan = {"name": "m", "formats": ["onnx"]}
    recorded = contract.model_copy(update={"build_hash": stamp.build_hash(plan)})
    entry = {"path": "m.onnx", "contract": recorded.document()}
    return entry, {"source": {"sha256": contract.source_sha256}, "config": {"plan": plan}, "artifacts": [entry]}


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_a_tampered_range_is_detected(fmt, tmp_path):
    path = _make(fmt, tmp_path)
    entry, manifest = _manifest(CONTRACT)
    stamp.write(path, fmt, Contract.model_validate(entry["contract"]))
    assert stamp.verify(path, entry, manifest).input("x").range == (-4.0, 4.0)
    edited = json.loads(get_format(fmt).member("read_contract")(path))
    edited["inputs"][0]["range"] = [0.0, 255.0]
    get_format(fmt).member("write_contract")(path, json.dumps(edited))
    with pytest.raises(ContractError, match=r"differs from the manifest's: inputs\.x\.range: \[-4\.0, 4\.0\] -> \[0\.0, 255\.0\]"):
        stamp.verify(path, entry, manifest)


def test_a_contract_of_another_build_is_detected(tmp_path):
    path = _make("onnx", tmp_path)
    entry, manifest = _manifest(CONTRACT)
    manifest["config"]["plan"]["name"] = "other"  # the plan changed: its hash is not the one recorded
    stamp.write(path, "onnx", Contract.model_validate(entry["contract"]))
    with pytest.raises(ContractError, match="records another build"):
        stamp.verify(path, entry, manifest)


def test_a_manifest_contract_without_one_in_the_artifact_is_detected(tmp_path):
    path = _make("onnx", tmp_path)
    entry, manifest = _manifest(CONTRACT)
    with pytest.raises(ContractError, match="m.onnx has no contract but the manifest has one"):
        stamp.verify(path, entry, manifest)
