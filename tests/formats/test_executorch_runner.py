"""The Runner contract against the ExecuTorch runtime, on .pte files lowered with XNNPACK (slow: each model
goes through torch.export and to_edge_transform_and_lower)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import ConversionError, EdgekitError

from . import models
from .test_runner_contract import RunnerContract

pytestmark = pytest.mark.slow


class TestExecuTorch(RunnerContract):
    fmt, runtime_name, has_op_profile = "executorch", "executorch", False
    quantized_feed = {"q": np.array([[1.0, -2.0, 3.5, 0.0]])}
    quantized_out = np.array([[2.0, -4.0, 7.0, 0.0]], np.float32)

    def write_models(self, folder):
        return models.executorch_model(folder / "m.pte"), models.executorch_model(folder / "q.pte", quantized=True)

    def test_quantized_io_uses_scale_and_zero_point(self, paths):
        """ExecuTorch programs keep float I/O (quantize/dequantize run inside): the int8 program of 2*q,
        calibrated on [-4, 7], gives 2*q within one activation step (11/255) of the output range."""
        runner = self.open(paths[1])
        assert [s.dtype for s in (*runner.inputs, *runner.outputs)] == ["float32", "float32"]
        result = runner.run(self.quantized_feed)["out"]
        np.testing.assert_allclose(result, self.quantized_out, atol=0.05)

    def test_int8_weights_are_stored_in_the_xnnpack_delegate(self, paths):
        from edgekit.formats import get_format

        fmt = get_format("executorch")
        assert fmt.member("weight_counts")(paths[1])["int8"] == 16  # the 4x4 weight, per-channel int8
        assert fmt.member("stored_precision")(paths[1]) == "int8"
        assert fmt.member("stored_precision")(paths[0]) == "fp32"

    def test_a_corrupt_program_is_the_runtimes_message(self, paths, tmp_path):
        data = bytearray(paths[0].read_bytes())
        data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # same size, zeroed second half
        broken = tmp_path / "zeroed.pte"
        broken.write_bytes(bytes(data))
        with pytest.raises(ConversionError, match="ExecuTorch runtime cannot load zeroed.pte"):
            self.open(broken)

    def test_threads_size_the_process_wide_threadpool_or_are_refused_by_name(self, paths):
        from executorch.extension.pybindings import portable_lib

        one = self.open(paths[0], threads=1)
        assert one.threads == 1 == portable_lib._threadpool_get_thread_count()
        with pytest.raises(EdgekitError, match="1 other program.* use the process-wide threadpool of 1"):
            self.open(paths[0], threads=2)
        np.testing.assert_array_equal(one.run({"x": models.X, "k": models.K})["y"], models.Y)  # unharmed
        one.close()
        two = self.open(paths[0], threads=2)
        assert two.threads == 2 == portable_lib._threadpool_get_thread_count()
        np.testing.assert_array_equal(two.run({"x": models.X, "k": models.K})["y"], models.Y)
        again = self.open(paths[1], threads=2)  # the same size: no resize, no refusal
        assert again.threads == 2
        two.close()
        again.close()

    def test_the_op_profile_says_why_the_etdump_holds_no_times(self, paths):
        runner = self.open(paths[0], profile_ops=True)
        assert runner.op_profile(runner.prepare({"x": models.X, "k": models.K}), 3) is None
        assert "built without its event tracer" in runner.op_profile_note
        assert "EXECUTORCH_ENABLE_EVENT_TRACER" in runner.op_profile_note
        runner.close()
