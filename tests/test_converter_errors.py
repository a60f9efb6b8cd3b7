"""Errors that carry the cause: the operators a converter could not handle are in the message, the full text
in the manifest's failure record, the route's log beside the manifest, and --verbose prints it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.causes import cause_lines
from edgekit.errors import ConversionError
from edgekit.worker import write_route_log

onnx = pytest.importorskip("onnx")

OPENVINO_REPORT = """Check 'false' failed at src/frontends/common_translators/src/unconverted_ops_report.cpp:151:
FrontEnd API failed with OpConversionFailure:
Model wasn't fully converted. Failed operations detailed log:
-- Conv-15 with a message:
[ONNX Frontend] Conversion failed for Conv-15
While validating ONNX node '<Node(Conv): /model/decoder/decoder/2/Conv_output_0>': Check 'data.get_partial_shape().rank().is_static()' failed at src/frontends/onnx/frontend/src/op/conv.cpp:38:
FrontEnd API failed with GeneralFailure:
The input data tensor's rank has to be known (static)

-- ReduceMean-15 with a message:
[ONNX Frontend] Conversion failed for ReduceMean-15
Check '(supported_types.find(ov_input.get_element_type()) != supported_types.end())' failed at src/frontends/onnx/frontend/src/op/reduce.cpp:134:
While validating ONNX node '<Node(ReduceMean): /model/ReduceMean_output_0>':
Unsupported input type dynamic

Summary:
-- Conversion is failed for: Conv-15, ReduceMean-15
"""


def test_openvino_unconverted_ops_report_gives_the_ops_and_nodes():
    assert cause_lines(OPENVINO_REPORT) == [
        "operators OpenVINO could not convert: Conv-15, ReduceMean-15",
        "Conv node /model/decoder/decoder/2/Conv_output_0: The input data tensor's rank has to be known (static)",
        "ReduceMean node /model/ReduceMean_output_0: Unsupported input type dynamic",
    ]


def test_missing_inputs_line_is_kept():
    text = "Traceback (most recent call last):\n  File \"x.py\", line 1\nInvalidArgument: Required inputs " \
           "['model_1/dense/13323:0'] are missing from input feed ['x:0']."
    assert cause_lines(text) == [text.splitlines()[-1]]


def test_detail_crosses_the_process_boundary_and_lands_in_the_route_log(tmp_path):
    import pickle

    error = pickle.loads(pickle.dumps(ConversionError("short", "do this", detail="the long text")))
    assert (error.message, error.hint, error.detail) == ("short", "do this", "the long text")
    log = write_route_log(tmp_path / "logs" / "openvino-fp32.log", "worker line\n", error)
    assert log.read_text() == "worker line\nerror: short\nhint: do this\nfull message:\nthe long text\n"


def _rankless_model(path: Path) -> Path:
    """Valid ONNX whose Conv input has an unknown rank (a Reshape to a shape given as an input)."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).random((4, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["image"], name="to_image"),
         helper.make_node("Conv", ["image", "w"], ["c"], name="stem_conv"),
         helper.make_node("ReduceMean", ["c"], ["y"], name="pool", keepdims=0)],
        "rankless", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64]),
                     helper.make_tensor_value_info("shape", TensorProto.INT64, ["rank"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c"])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.mark.slow  # a CLI build in a worker process: about 15 s
def test_cli_names_the_unconverted_operators_and_saves_the_log(tmp_path):
    model = _rankless_model(tmp_path / "rankless.onnx")
    out = tmp_path / "out"
    data = tmp_path / "validation.npz"
    np.savez(data, x=np.ones((2, 1, 64), np.float32), shape=np.array([[1, 1, 8, 8]] * 2, np.int64))
    cmd = [sys.executable, "-m", "edgekit.cli", "convert", str(model), "-f", "openvino", "-p", "fp32", "-o", str(out),
           "--validation", str(data)]
    result = subprocess.run([*cmd, "--verbose"], capture_output=True, text=True, timeout=600)
    text = " ".join((result.stdout + result.stderr).split())  # rich wraps long lines
    assert result.returncode == 1, text
    assert "operators OpenVINO could not convert: Conv-17, ReduceMean-17" in text
    assert "Conv node c: The input data tensor's rank has to be known (static)" in text
    assert "see the worker log" not in text
    assert "the converter's full message" in text and "unconverted_ops_report.cpp" in text  # --verbose
    manifest = json.loads((out / "edgekit-manifest.json").read_text())
    (failure,) = manifest["failures"]
    assert "unconverted_ops_report.cpp:151" in failure["detail"]
    assert failure["log"] == str(out / "logs" / "openvino-fp32.log") and failure["log"] in failure["hint"]
    assert "Conversion is failed for: Conv-17, ReduceMean-17" in Path(failure["log"]).read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # the same build into its own folder
    text = " ".join((again.stdout + again.stderr).split())
    assert again.returncode == 1 and "not part of its edgekit build" not in text, text
    assert [f["log"] for f in json.loads((out / "edgekit-manifest.json").read_text())["failures"]] == [failure["log"]]
