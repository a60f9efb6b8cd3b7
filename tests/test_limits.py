"""Hostile inputs are refused before anything is allocated: each in under 5 s, with a message naming the cause."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import DataError, InvalidOptionError, ModelFileError
from edgekit.limits import (
    MIN_CALIBRATION_SAMPLES, GraphLimits, calibration_warning, check_feed_budget, memory_budget, parse_bytes, route_timeout,
)
from edgekit.specs import TensorSpec
from tests.kill_harness import kill

REFUSE_SECONDS = 5.0  # CPU seconds of the CLI process: wall time on a shared 2-core machine is mostly waiting
HANG_SECONDS = 30.0  # wall-clock bound: a hang (a converter, a blocked read) fails here
PEAK_RSS_BYTES = 1 << 30


def refused(*args: object, cwd: Path | None = None) -> tuple[str, float, int]:
    """Run the CLI in a child; assert exit 2 without a traceback within :data:`HANG_SECONDS`; return
    (stderr, the CLI's CPU seconds, its peak RSS in bytes), both measured with getrusage of the child."""
    code = ("import resource, subprocess, sys, time; t = time.monotonic(); "
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120); "
            "use = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "sys.stderr.write(done.stderr); "
            "print(done.returncode, time.monotonic() - t, use.ru_utime + use.ru_stime, use.ru_maxrss * 1024)")
    done = subprocess.run([sys.executable, "-c", code, *kill.cli(*map(str, args))], capture_output=True, text=True,
                          timeout=180, cwd=cwd)
    returncode, wall, cpu, rss = done.stdout.split()
    assert int(returncode) == 2 and "Traceback" not in done.stderr and "hint: " in done.stderr, done.stderr
    assert float(wall) < HANG_SECONDS, wall
    return done.stderr, float(cpu), int(rss)


def nested_if(path: Path, depth: int) -> Path:
    """An ONNX model whose output comes from ``depth`` If nodes nested one inside the other (about 4 KB at 30)."""
    import onnx
    from onnx import TensorProto, helper

    def branch(level: int, name: str):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1])
        if level == 0:
            return helper.make_graph([helper.make_node("Identity", ["x"], [f"{name}_out"])], name, [], [out])
        node = helper.make_node("If", ["c"], [f"{name}_out"], then_branch=branch(level - 1, f"{name}t"),
                                else_branch=branch(0, f"{name}e"))
        return helper.make_graph([node], name, [], [out])

    body = branch(depth, "g")
    graph = helper.make_graph(
        list(body.node), "nested",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []), helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("g_out", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def add_chain(path: Path, length: int) -> Path:
    """``x + 1 + 1 + ...``: ``length`` Add nodes in one chain (OpenVINO's converter takes minutes on 5,000)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, previous = [], "x"
    for index in range(length):
        nodes.append(helper.make_node("Add", [previous, "one"], [f"t{index}"]))
        previous = f"t{index}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
                              [numpy_helper.from_array(np.ones((1,), np.float32), "one")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def sparse_external(folder: Path, gib: int) -> Path:
    """A MatMul model whose weight lives in a ``gib`` GiB external-data file made by ``truncate`` (all holes)."""
    import onnx
    from onnx import TensorProto, helper

    columns = (gib << 30) // 4 // 1024
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1024, columns])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "model.onnx.data"), ("offset", "0"), ("length", str(gib << 30))):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, columns])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "model.onnx"))
    subprocess.run(["truncate", "-s", f"{gib}G", str(folder / "model.onnx.data")], check=True)
    return folder / "model.onnx"


def dynamic_relu(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["image"], ["y"])], "dyn",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 8, 8, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 8, 1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def assert_fast_and_small(seconds: float, rss: int) -> None:
    assert seconds < REFUSE_SECONDS and rss < PEAK_RSS_BYTES, (seconds, rss)


def test_a_huge_input_shape_is_refused_with_its_bytes(tmp_path):
    model = dynamic_relu(tmp_path / "dyn.onnx")
    err, seconds, rss = refused("convert", model, "-f", "onnx", "-p", "fp32", "-o", tmp_path / "out",
                                "--input-shape", "image=100000000,8,8,1")
    assert "input 'image' of shape [100000000, 8, 8, 1] needs at least 6.0 GiB per sample (6400000000 bytes" in err
    assert "over the memory budget" in err and not (tmp_path / "out").exists()
    assert_fast_and_small(seconds, rss)


def test_nested_if_30_deep_is_refused_quickly(tmp_path):
    model = nested_if(tmp_path / "nested.onnx", 30)
    assert model.stat().st_size < 8000
    err, seconds, rss = refused("convert", model, "-f", "openvino", "-p", "fp32", "-o", tmp_path / "out")
    assert "is refused as a pathological graph: it has subgraphs (If/Loop/Scan bodies) nested more than 8 deep" in err
    assert "--graph-limit max_nesting=N" in err
    assert_fast_and_small(seconds, rss)


def test_a_5000_node_chain_is_refused_quickly(tmp_path):
    model = add_chain(tmp_path / "chain.onnx", 5000)
    err, seconds, rss = refused("convert", model, "-f", "openvino", "-p", "fp32", "-o", tmp_path / "out")
    assert "a chain of 5001 nodes one after another (the limit is 4000)" in err
    assert_fast_and_small(seconds, rss)


def test_graph_limits_are_configurable(tmp_path):
    model = add_chain(tmp_path / "chain.onnx", 50)
    err, _, _ = refused("convert", model, "-f", "onnx", "-p", "fp32", "-o", tmp_path / "out", "--graph-limit", "max_chain=20")
    assert "a chain of 51 nodes one after another (the limit is 20)" in err
    with pytest.raises(InvalidOptionError, match="invalid graph limit max_depth=3"):
        GraphLimits.of({"max_depth": 3})


def test_an_8_gib_sparse_external_data_file_is_refused_without_reading_it(tmp_path):
    model = sparse_external(tmp_path, 8)
    assert (tmp_path / "model.onnx.data").stat().st_size == 8 << 30
    err, seconds, rss = refused("convert", model, "-f", "onnx", "-p", "fp32", "-o", tmp_path / "out")
    assert "'model.onnx.data' is a sparse file: its tensors declare 8.0 GiB but only 0 bytes are stored on disk" in err
    assert_fast_and_small(seconds, rss)


def test_external_data_over_the_budget_is_refused(tmp_path):
    model = sparse_external(tmp_path, 1)
    with open(tmp_path / "model.onnx.data", "r+b") as handle:  # really stored: not sparse
        for _ in range(8):
            handle.write(b"\x01" * (128 << 20))
    err, seconds, rss = refused("convert", model, "-f", "onnx", "-o", tmp_path / "out", "--memory-budget", "1G")
    assert "declares 1.0 GiB of external data; converting it needs about 2.0 GiB, over what the memory budget leaves" in err
    assert_fast_and_small(seconds, rss)


@pytest.mark.parametrize("which", ["model", "calibration"])
def test_a_fifo_is_refused_as_a_fifo(tmp_path, which):
    fifo = tmp_path / ("model.onnx" if which == "model" else "cal.npy")
    os.mkfifo(fifo)
    model = fifo if which == "model" else kill.small_onnx(tmp_path / "m.onnx")
    extra = ["--calibration", fifo, "-p", "int8"] if which == "calibration" else []
    err, seconds, _ = refused("convert", model, "-f", "onnx", "-o", tmp_path / "out", *extra)
    what = "a model" if which == "model" else "calibration data"
    assert f"{fifo} is a FIFO (named pipe), not a regular file: edgekit does not read {what} from it" in err
    assert seconds < REFUSE_SECONDS and not (tmp_path / "out").exists()


def test_a_device_file_is_refused_as_a_device():
    err, seconds, _ = refused("convert", "/dev/zero", "-f", "onnx", "-o", "/tmp/never-made")
    assert "/dev/zero is a device file, not a regular file" in err and seconds < REFUSE_SECONDS


def test_feed_budget_counts_every_input_and_sample():
    inputs = (TensorSpec(name="a", shape=(1, 1024), dtype="float32"), TensorSpec(name="b", shape=(None, 4), dtype="int64"))
    check_feed_budget(inputs, 16, 16 * 4096)  # exactly fits; the dynamic input is not counted
    with pytest.raises(DataError, match=r"input 'a' of shape \[1, 1024\] \(float32\) needs 4.0 KiB per sample"):
        check_feed_budget(inputs, 17, 16 * 4096)


def test_budget_timeout_and_calibration_defaults():
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory_budget() <= physical // 2
    assert memory_budget("512M") == 512 << 20 and parse_bytes("1.5g") == 3 << 29 and parse_bytes(4096) == 4096
    with pytest.raises(InvalidOptionError):
        parse_bytes("lots")
    assert route_timeout(0, 10 << 30) is None and route_timeout(12, None) == 12.0
    assert route_timeout(None, 0) == 1800.0 and route_timeout(None, 2 << 30) == 5400.0
    assert calibration_warning(1, ["int8"]) == (
        "warning: int8 calibration used 1 sample(s); at least 16 are needed for stable quantization ranges (give 15 more)")
    assert calibration_warning(MIN_CALIBRATION_SAMPLES, ["int8"]) is None and calibration_warning(1, ["fp32"]) is None


@pytest.mark.slow
def test_a_one_sample_calibration_set_warns_with_the_number_needed(tmp_path):
    import edgekit
    from edgekit.manifest import read_manifest

    model = kill.small_onnx(tmp_path / "m.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).standard_normal((1, 1, 64)).astype(np.float32))
    np.save(tmp_path / "val.npy", np.random.default_rng(1).standard_normal((16, 1, 64)).astype(np.float32))
    build = edgekit.convert(model, formats="onnx", precision="int8", calibration_data=tmp_path / "cal.npy",
                            validation_data=tmp_path / "val.npy", output_dir=tmp_path / "out")
    warning = calibration_warning(1, ["int8"])
    assert warning in build.artifacts[0].notes and read_manifest(tmp_path / "out")["config"]["run"]["warnings"] == [warning]
    done = subprocess.run(kill.cli("convert", str(model), "-f", "onnx", "-p", "int8", "-c", str(tmp_path / "cal.npy"),
                                   "--validation", str(tmp_path / "val.npy"), "-o", str(tmp_path / "out2")), capture_output=True, text=True, timeout=300)
    assert "at least 16 are needed" in done.stdout + done.stderr
