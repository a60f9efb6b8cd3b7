"""The GUI's non-Qt logic (job requests, protocol, project files, device rows) and the job process itself."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from edgekit.gui.devices import agent_row, host_rows, profile_devices
from edgekit.gui.jobs import (
    ConvertOptions,
    DevicesRequest,
    Error,
    Progress,
    Result,
    convert_arguments,
    decode,
    encode,
)
from edgekit.gui.project import Project, kind_of_path

from edgekit.errors import InvalidOptionError

HOST = {"hostname": "bench", "system": "Linux 6", "machine": "x86_64", "cpu": "AMD EPYC", "cpu_count": 2,
        "memory_bytes": 8 * 2**30, "python": "3.11", "runtimes": {"ai-edge-litert": "2.3.0", "openvino": "2026.4.1"},
        "accelerators": {"tflite": ["xnnpack"], "openvino": ["CPU", "GPU"]}}


def test_convert_arguments_without_steps_send_no_optimization_keywords():
    options = ConvertOptions(model="m.keras", target="cpu-x86", formats=["onnx"], precisions=["fp32"], output_dir="out")
    arguments = convert_arguments(options)
    assert arguments == {"target": "cpu-x86", "formats": ["onnx"], "precision": ["fp32"], "calibration_data": None,
                         "validation_data": None, "output_dir": "out", "force": False, "allow_unsafe": False}


def test_convert_arguments_turn_step_dicts_into_library_steps():
    steps = [{"kind": "prune", "sparsity": 0.6, "structured": True, "epochs": 1},
             {"kind": "distill", "teacher": "", "temperature": 2.0, "alpha": 0.5, "epochs": 3}, {"kind": "qat", "epochs": 2}]
    arguments = convert_arguments(ConvertOptions(model="m.keras", output_dir="out", steps=steps, train_data="train.npz"))
    prune, distill, qat = arguments["optimizations"]
    assert (prune.kind, prune.sparsity, prune.structured, prune.epochs) == ("prune", 0.6, True, 1)
    assert (distill.kind, distill.teacher, distill.temperature, distill.alpha) == ("distill", None, 2.0, 0.5)
    assert (qat.kind, qat.epochs) == ("qat", 2)
    assert arguments["train_data"] == "train.npz" and arguments["val_data"] is None


def test_bad_step_options_and_missing_inputs_are_the_library_errors():
    with pytest.raises(InvalidOptionError, match="sparsity"):
        convert_arguments(ConvertOptions(model="m.keras", output_dir="o", steps=[{"kind": "prune", "sparsity": 1.5}],
                                         train_data="t.npz"))
    with pytest.raises(InvalidOptionError, match="training data") as missing:
        convert_arguments(ConvertOptions(model="m.keras", output_dir="o", steps=[{"kind": "qat"}]))
    assert "x and y" in missing.value.hint
    with pytest.raises(InvalidOptionError, match="no model chosen"):
        convert_arguments(ConvertOptions(output_dir="o"))


def test_protocol_lines_round_trip_and_foreign_lines_are_skipped():
    line = encode(Progress(stage="convert:onnx/fp32", fraction=0.5, message="converting"))
    assert line.endswith(b"\n") and decode(line) == Progress(stage="convert:onnx/fp32", fraction=0.5, message="converting")
    assert decode(encode(Error(message="bad", hint="fix it"))).hint == "fix it"
    assert decode(encode(Result(data={"a": [1, 2]}))).data == {"a": [1, 2]}
    assert decode(b"WARNING: something printed by a library") is None
    assert decode(b'{"type": "unknown"}') is None


def test_project_file_round_trip_and_path_kinds(tmp_path):
    options = ConvertOptions(model="/m/digits.keras", target="cpu-arm64", formats=["tflite"], precisions=["int8"],
                             calibration_data="/d/calib.npy", output_dir="/o", steps=[{"kind": "qat", "epochs": 4}])
    path = Project(options=options, build_dir="/o").save(tmp_path / "run.edgekit.json")
    loaded = Project.load(path)
    assert loaded.options == options and loaded.build_dir == "/o"
    assert kind_of_path(path) == "project"
    build = tmp_path / "build"
    build.mkdir()
    (build / "edgekit-manifest.json").write_text("{}")
    assert kind_of_path(build) == "build"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"not": "a project"}))
    assert kind_of_path(other) == "model"
    with pytest.raises(InvalidOptionError, match="not an edgekit project file"):
        Project.load(other)


def _entry(fmt: str, runtime: str, kind: str, name: str, state: str, install: str = "", device: str = "") -> dict:
    from edgekit import DeviceEntry

    return DeviceEntry(format=fmt, runtime=runtime, kind=kind, name=name, state=state, description=f"{name} here",
                       version="1.0" if kind == "runtime" else None, install=install, device=device).model_dump(mode="json")


ENTRIES = [
    _entry("tflite", "litert", "runtime", "ai-edge-litert", "installed"),
    _entry("tflite", "litert", "accelerator", "xnnpack", "available", device="local:cpu"),
    _entry("tflite", "litert", "accelerator", "gpu", "not present", "the device's LiteRT build", "local:gpu"),
    _entry("openvino", "openvino", "runtime", "openvino", "installed"),
    _entry("openvino", "openvino", "accelerator", "GPU", "available", device="local:gpu"),
    _entry("openvino", "openvino", "accelerator", "NPU", "not present", "the Intel NPU driver", "local:npu"),
    _entry("onnx", "onnxruntime", "runtime", "onnxruntime", "missing", "pip install 'edgekit[agent]'"),
    _entry("onnx", "onnxruntime", "accelerator", "CPUExecutionProvider", "missing", "pip install 'edgekit[agent]'", "local:cpu"),
]


def test_device_rows_say_what_is_available_and_why_not():
    rows = {row.name: row for row in host_rows(HOST, ENTRIES)}
    assert len(rows) == 6  # the host and every accelerator; runtimes name the package of their accelerators' rows
    assert rows["This computer (bench)"].state == "available" and "8.0 GB" in rows["This computer (bench)"].detail
    assert rows["tflite · litert xnnpack"].state == "available" and rows["tflite · litert xnnpack"].device == "local:cpu"
    assert rows["tflite · litert xnnpack"].runtime == "ai-edge-litert 1.0"
    assert rows["tflite · litert gpu"].state == "missing"
    assert rows["openvino · openvino GPU"].state == "available" and rows["openvino · openvino GPU"].device == "local:gpu"
    assert rows["openvino · openvino NPU"].detail == "not present: the Intel NPU driver"
    cpu_ep = rows["onnx · onnxruntime CPUExecutionProvider"]
    assert cpu_ep.state == "missing" and cpu_ep.detail == "missing: pip install 'edgekit[agent]'"
    agents = [agent_row("10.0.0.5:8765", "available", "pi"), agent_row("agent://10.0.0.6:8765", "found", "")]
    assert profile_devices([*rows.values(), *agents]) == ["local:cpu", "local:gpu", "agent://10.0.0.5:8765"]


def test_device_rows_from_this_host_list_every_runtime_of_every_format():
    from edgekit import devices, host_info

    entries = [entry.model_dump(mode="json") for entry in devices()]
    rows = host_rows(host_info(probe=False).model_dump(mode="json"), entries)
    assert {row.kind for row in rows} == {"cpu", "tflite", "onnx", "openvino", "executorch"}
    assert next(r for r in rows if r.name == "onnx · onnxruntime CPUExecutionProvider").state == "available"


def _job(request: str) -> tuple[list, int]:
    done = subprocess.run([sys.executable, "-m", "edgekit.gui.job"], input=request.encode(), capture_output=True, timeout=120)
    return [decode(line) for line in done.stdout.splitlines()], done.returncode


def test_job_process_answers_a_corrupt_model_with_message_and_hint(tmp_path):
    bad = tmp_path / "weights.keras"
    bad.write_bytes(b"PK\x03\x04 this zip is cut short")
    messages, code = _job(json.dumps({"job": "inspect", "model": str(bad)}))
    assert code == 1
    assert len(messages) == 1 and isinstance(messages[0], Error)
    assert "weights.keras" in messages[0].message and messages[0].hint


def test_runner_turns_a_crashed_job_into_a_plain_error(qtbot):
    from edgekit.gui.runner import JobRunner

    runner = JobRunner()
    failures = []
    runner.failed.connect(lambda message, hint: failures.append((message, hint)))
    with qtbot.waitSignal(runner.progress, timeout=30_000):
        assert runner.start(DevicesRequest(scan_seconds=20))
    assert not runner.start(DevicesRequest())  # one job at a time
    os.kill(runner.process.processId(), signal.SIGSEGV)  # what a native crash in a converter looks like
    qtbot.waitUntil(lambda: bool(failures), timeout=10_000)
    assert failures[0][0] == "the job process crashed (SIGSEGV)"
    assert "native code" in failures[0][1]
    assert not runner.running


def test_optimization_summary_lists_every_step():
    from edgekit.gui.convert_view import optimization_summary
    from edgekit.optimize.report import OptimizationReport, StepRecord

    records = (StepRecord(step="source", accuracy=0.9711, parameters=8938, nonzero_parameters=8938, sparsity=0.0, weight_bytes=35752),
               StepRecord(step="prune(structured 50%)", accuracy=0.9689, parameters=2610, nonzero_parameters=2610, sparsity=0.0,
                          weight_bytes=10440))
    report = OptimizationReport(framework="keras3", task="classification", train_samples=1347, val_samples=450, records=records)
    assert optimization_summary(report) == ("\nOptimization — source: 97.11%, 8,938 parameters, 0% sparse → "
                                            "prune(structured 50%): 96.89%, 2,610 parameters, 0% sparse")
    assert optimization_summary(None) == ""
