"""``edgekit inspect ARTIFACT``: format, I/O with quantization parameters, stored precision, manifest entry and
contract (checked against the manifest's copy)."""
from __future__ import annotations

import json
import subprocess
import sys

import edgekit
from edgekit.contract import stamp
from tests.contract.test_carriers import CONTRACT
from tests.formats import models


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", "inspect", *map(str, args)], capture_output=True, text=True)


def test_a_quantized_tflite_file_shows_its_scale_and_zero_point(tmp_path):
    path = models.tflite_quantized(tmp_path / "q.bin")  # the suffix says nothing: the content is sniffed
    done = _cli(path, "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["format"], info["stored_precision"], info["contract_status"]) == ("tflite", "int8", "none")
    assert info["specs_from"] == "runtime litert"
    assert [(s["name"], s["dtype"], s["scale"], s["zero_point"]) for s in info["inputs"]] == [("q", "uint8", 0.5, 128)]
    assert [(s["name"], s["dtype"], s["scale"], s["zero_point"]) for s in info["outputs"]] == [("out", "int8", 0.25, -2)]


def test_an_onnx_file_in_a_build_folder_shows_its_entry_and_contract(tmp_path):
    path = models.onnx_model(tmp_path / "m.onnx")
    plan = {"name": "m"}
    recorded = CONTRACT.model_copy(update={"build_hash": stamp.build_hash(plan)})
    stamp.write(path, "onnx", recorded)
    entry = {"format": "onnx", "precision": "fp32", "route": "onnx_onnx", "path": "m.onnx", "files": ["m.onnx"],
             "sha256": "0" * 64, "validation": {"status": "passed", "samples": 200}, "contract": recorded.document()}
    manifest = {"schema_version": 2, "source": {"sha256": CONTRACT.source_sha256}, "config": {"plan": plan},
                "artifacts": [entry]}
    (tmp_path / "edgekit-manifest.json").write_text(json.dumps(manifest))
    assert edgekit.is_artifact(path)
    info = edgekit.inspect_artifact(path)
    assert info.contract_status == "matches the manifest" and info.contract == recorded
    assert info.manifest_entry["validation"]["samples"] == 200 and "contract" not in info.manifest_entry
    done = _cli(path)
    assert done.returncode == 0, done.stderr
    assert "contract: matches the manifest" in done.stdout and "range [-4.0, 4.0]" in done.stdout
    entry["contract"]["inputs"][0]["range"] = [0, 1]
    (tmp_path / "edgekit-manifest.json").write_text(json.dumps(manifest))
    info = edgekit.inspect_artifact(path)
    assert info.contract_status == ("the contract in m.onnx differs from the manifest's: inputs.x.range: [0.0, 1.0] -> "
                                    "[-4.0, 4.0]")


def test_a_plain_onnx_model_is_still_inspected_as_a_source(tmp_path):
    path = models.onnx_model(tmp_path / "m.onnx")
    assert not edgekit.is_artifact(path)
    done = _cli(path, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["framework"] == "onnx"
    forced = json.loads(_cli(path, "--artifact", "--json").stdout)
    assert forced["format"] == "onnx" and forced["contract_status"] == "none"
