"""7-bit weights where int8 products saturate (x86-64 without VNNI): the host check, and what ONNX Runtime and
OpenVINO int8 builds store with weight_range "full" and "reduced"."""
from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.cpu_int8 import cpu_flags, host_int8_saturates, saturates
from edgekit.options import QuantScheme

AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"


def test_saturation_is_x86_without_vnni():
    assert cpu_flags(AVX2_ONLY) == {"fpu", "sse2", "avx", "fma", "avx2", "bmi2"}
    assert saturates("x86_64", AVX2_ONLY) and not saturates("x86_64", VNNI)
    assert not saturates("aarch64", "Features\t: fp asimd asimddp\n")
    assert not saturates("x86_64", AVX2_ONLY.replace("bmi2", "avx_vnni"))  # Alder Lake's AVX-VNNI


def test_auto_follows_the_host_and_int16_activations_keep_8_bit_weights():
    assert QuantScheme().reduced_weights == host_int8_saturates()
    assert QuantScheme(weight_range="reduced").reduced_weights and not QuantScheme(weight_range="full").reduced_weights
    assert not QuantScheme(activations="int16").reduced_weights


def _int8_weights(path) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = [numpy_helper.to_array(i) for i in graph.initializer]
    return np.concatenate([a.ravel().astype(np.int32) for a in arrays if a.dtype == np.int8 and a.size > 64])


@pytest.mark.slow
def test_reduced_weights_hold_7_bits_in_the_onnx_and_openvino_artifacts(tmp_path):
    import openvino as ov
    from tune_models import make_mlp

    mlp = make_mlp(tmp_path / "mlp")
    extremes, notes = {}, {}
    for weight_range in ("full", "reduced"):
        build = edgekit.convert(mlp["model"], formats=["onnx", "openvino"], precision="int8", rescue=False,
                                calibration_data=str(mlp["calibration"]), validation_data=str(mlp["validation"]),
                                quantization={"weight_range": weight_range}, output_dir=tmp_path / weight_range)
        onnx_weights = _int8_weights(build.artifact("onnx", "int8").path)
        ir = ov.Core().read_model(build.artifact("openvino", "int8").path)
        ov_weights = np.concatenate([op.get_data().ravel().astype(np.int32) for op in ir.get_ops()
                                     if op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.i8])
        extremes[weight_range] = (int(np.abs(onnx_weights).max()), int(np.abs(ov_weights).max()))
        notes[weight_range] = [a.notes for a in build.artifacts]
    assert extremes["full"] == (127, 127)
    assert max(extremes["reduced"]) <= 64  # 7 bits: -64 .. 63 (64 at most after symmetric rounding)
    assert all(not any("7-bit" in n for n in artifact) for artifact in notes["full"])
    assert all(any("7-bit" in n and "VNNI" in n for n in artifact) for artifact in notes["reduced"])
