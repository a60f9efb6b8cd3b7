"""One Runner contract, written once and run against every runner: LiteRT, ONNX Runtime, OpenVINO on its IR
and OpenVINO on an .onnx file. Each subclass says how to write its models and what its runtime reports."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit import open_runner
from edgekit.errors import EdgekitError

from . import models


class RunnerContract:
    """Subclasses set ``fmt``, ``runtime`` (None: the format's default) and write the two models."""

    fmt: str
    runtime: str | None = None
    runtime_name: str  # what Runner.runtime reports
    precision = "f32"  # executed precision
    has_op_profile = True
    quantized_feed: dict  # the feed of the quantized model, and what it must give
    quantized_out = np.array([[1.0, -2.0, 3.5, 0.0]], np.float32)

    def write_models(self, folder: Path) -> tuple[Path, Path]:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def paths(self, tmp_path_factory) -> tuple[Path, Path]:
        return self.write_models(tmp_path_factory.mktemp(f"contract-{self.fmt}-{self.runtime or 'default'}"))

    def open(self, path: Path, **options):
        return open_runner(path, self.fmt, runtime=self.runtime, **options)

    def test_loads_with_named_inputs_and_outputs(self, paths):
        runner = self.open(paths[0])
        assert runner.runtime == self.runtime_name
        assert {s.name for s in runner.inputs} == {"x", "k"} and [s.name for s in runner.outputs] == ["y"]
        dtypes = {s.name: s.dtype for s in runner.inputs}
        assert dtypes["x"] == "float32" and dtypes["k"] in ("int32", "int64")
        assert all(s.shape == (1, 4) for s in (*runner.inputs, *runner.outputs))

    def test_float64_and_python_int_feeds_are_cast(self, paths):
        result = self.open(paths[0]).run({"x": models.X, "k": models.K})
        assert result["y"].dtype == np.float32
        np.testing.assert_array_equal(result["y"], models.Y)

    def test_a_missing_input_is_named(self, paths):
        with pytest.raises(EdgekitError, match="no value for the input 'k'"):
            self.open(paths[0]).run({"x": models.X})

    def test_quantized_io_uses_scale_and_zero_point(self, paths):
        result = self.open(paths[1]).run(self.quantized_feed)
        np.testing.assert_array_equal(result["out"], self.quantized_out)

    def test_reports_the_executed_precision(self, paths):
        assert self.open(paths[0]).executed_precision == self.precision

    def test_prepared_runs_equal_plain_runs(self, paths):
        runner = self.open(paths[0])
        other = {"x": np.zeros((1, 4), np.float32), "k": [[5, 6, 7, 8]]}
        before = runner.run(other)["y"]
        prepared = runner.prepare({"x": models.X, "k": models.K})
        for _ in range(3):
            runner.run_prepared(prepared)
        np.testing.assert_array_equal(runner.run({"x": models.X, "k": models.K})["y"], models.Y)
        np.testing.assert_array_equal(runner.run(other)["y"], before)
        np.testing.assert_array_equal(before, [[5.0, 6.0, 7.0, 8.0]])

    def test_op_profile_or_a_clear_none(self, paths):
        plain = self.open(paths[0])
        assert plain.op_profile(plain.prepare({"x": models.X, "k": models.K}), 2) is None
        runner = self.open(paths[0], profile_ops=True)
        ops = runner.op_profile(runner.prepare({"x": models.X, "k": models.K}), 3)
        if not self.has_op_profile:
            assert ops is None
            return
        assert ops and all(op["ms"] >= 0 and op["name"] for op in ops)
        assert any(kind in op["type"] for op in ops for kind in ("Cast", "Convert"))  # the int input's cast ran

    def test_a_truncated_file_is_a_clear_error(self, paths, tmp_path):
        main = paths[0]
        for companion in main.parent.glob(main.stem + ".*"):
            shutil.copy(companion, tmp_path / companion.name)
        broken = tmp_path / main.name
        broken.write_bytes(main.read_bytes()[: len(main.read_bytes()) // 2])
        with pytest.raises(EdgekitError, match=broken.name):
            self.open(broken)


class TestLiteRt(RunnerContract):
    fmt, runtime_name, has_op_profile = "tflite", "litert", False
    quantized_feed = {"q": np.array([[1.0, -2.0, 3.5, 0.0]])}  # floats in (quantized by the runner), floats out

    def write_models(self, folder):
        return models.tflite_model(folder / "m.tflite"), models.tflite_quantized(folder / "q.tflite")

    def test_integer_feeds_of_a_quantized_input_pass_unchanged(self, paths):
        runner = self.open(paths[1])
        raw = np.array([[130, 124, 135, 128]], np.uint8)  # 1.0, -2.0, 3.5, 0.0 at scale 0.5, zero point 128
        np.testing.assert_array_equal(runner.run({"q": raw})["out"], self.quantized_out)


class TestOnnxRuntime(RunnerContract):
    fmt, runtime_name = "onnx", "onnxruntime"
    quantized_feed = {"q": [[130, 124, 135, 128]]}

    def write_models(self, folder):
        return models.onnx_model(folder / "m.onnx"), models.onnx_quantized(folder / "q.onnx")


class TestOpenVinoOnIr(RunnerContract):
    fmt, runtime_name = "openvino", "openvino"
    quantized_feed = {"q": [[130, 124, 135, 128]]}

    def write_models(self, folder):
        plain, quantized = models.onnx_model(folder / "src.onnx"), models.onnx_quantized(folder / "srcq.onnx")
        return models.openvino_ir(plain, folder / "m.xml"), models.openvino_ir(quantized, folder / "q.xml")


class TestOpenVinoOnOnnx(RunnerContract):
    fmt, runtime, runtime_name = "onnx", "openvino", "openvino"
    quantized_feed = {"q": [[130, 124, 135, 128]]}

    def write_models(self, folder):
        return models.onnx_model(folder / "m.onnx"), models.onnx_quantized(folder / "q.onnx")
