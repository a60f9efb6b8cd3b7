"""The tune search space from real profiles and routes, Optuna round trips, and the interval-aware front."""
from __future__ import annotations

import optuna
import pytest

from edgekit.errors import InvalidOptionError
from edgekit.profiles import load_profile
from edgekit.tune.front import TrialRecord, check_constraints, constraint_values, dominates, fastest, pareto_front
from edgekit.tune.space import TrialConfig, base_space, params_of, prefix_sets, suggest, thread_choices, with_sets
from edgekit.tune.tasks import BuildOutcome, Measurement


def test_space_from_the_cpu_x86_profile_and_the_onnx_routes():
    space = base_space(load_profile("cpu-x86"), "onnx", cores=2)
    assert list(space.formats) == ["onnx", "openvino", "tflite"]
    onnx, openvino, tflite = (space.formats[f] for f in ("onnx", "openvino", "tflite"))
    assert onnx.precisions == ("fp32", "fp16", "int8") and tflite.precisions == ("fp32", "fp16", "int8", "dynamic")
    assert onnx.calibration_methods == ("minmax", "percentile") and onnx.activations == ("int8", "int16")  # entropy == minmax
    assert openvino.calibration_methods == ("minmax", "percentile", "entropy")
    assert openvino.activations == ("int8",)  # NNCF: int8 activations only
    # litert-torch (ONNX -> TFLite): per-channel or per-tensor, no calibration choice, no int16
    assert tflite.calibration_methods == ("minmax",) and tflite.per_channel == (True, False) and tflite.activations == ("int8",)
    assert (onnx.accelerator, openvino.accelerator, tflite.accelerator) == ("CPUExecutionProvider", "CPU", "xnnpack")
    assert space.threads == (1, 2) and thread_choices(6) == (1, 2, 4, 6)
    # 3 float sets from two culprit groups: none, the worst, the two worst (prefixes, no repeats)
    traced = with_sets(space, {"onnx": prefix_sets([["a", "b"], ["b", "c"]])})
    assert traced.formats["onnx"].float_sets == ((), ("a", "b"), ("a", "b", "c"))
    assert traced.size() == 2 * ((2 + 2 * 2 * 2 * 3) + (2 + 2 * 3) + (3 + 2))


def test_an_integer_only_npu_profile_offers_no_int16():
    space = base_space(load_profile("coral-edgetpu"), "keras3", cores=1)
    assert all(fs.activations == ("int8",) for fs in space.formats.values())
    assert all(set(fs.precisions) <= {"int8"} for fs in space.formats.values())


def test_enqueued_params_give_back_the_same_configuration():
    space = with_sets(base_space(load_profile("cpu-x86"), "onnx", cores=2), {"onnx": prefix_sets([["n1"], ["n2"]])})
    config = TrialConfig(format="onnx", precision="int8", threads=2, accelerator="CPUExecutionProvider",
                         quantization={"per_channel": False, "calibration_method": "percentile", "activations": "int16"},
                         float_layers=("n1", "n2"))
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.enqueue_trial(params_of(config, space))
    assert suggest(study.ask(), space) == config
    seen = {suggest(study.ask(), space).format for _ in range(20)}
    assert seen <= {"onnx", "openvino", "tflite"} and len(seen) >= 2


def _record(number: int, median: float, low: float, high: float, accuracy: float, size: int = 1000,
            violations: list[str] | None = None) -> TrialRecord:
    build = BuildOutcome(key=f"k{number}", status="built", artifact="a", size_bytes=size, top1_agreement=accuracy)
    m = Measurement(status="complete", device="local:cpu", median_ms=median, ci_low_ms=low, ci_high_ms=high)
    return TrialRecord(number=number, config=TrialConfig(format="onnx", precision="fp32"), state="complete", build=build,
                       measurement=m, values={"latency": median, "accuracy": accuracy, "size": float(size)},
                       violations=violations or [])


def test_overlapping_latency_intervals_are_not_ranked():
    objectives = ("latency", "accuracy")
    fast = _record(0, 1.0, 0.9, 1.1, 0.95)
    overlapping_slower = _record(1, 1.05, 1.0, 1.2, 0.95)  # same accuracy, median higher, intervals overlap
    clearly_slower = _record(2, 2.0, 1.9, 2.1, 0.95)
    accurate = _record(3, 3.0, 2.9, 3.1, 0.99)
    infeasible = _record(4, 0.5, 0.4, 0.6, 0.99, violations=["min_accuracy 0.999 not met"])
    assert not dominates(fast, overlapping_slower, objectives) and dominates(fast, clearly_slower, objectives)
    front = pareto_front([fast, overlapping_slower, clearly_slower, accurate, infeasible], objectives)
    assert [r.number for r in front] == [0, 1, 3]
    best, tied = fastest([fast, overlapping_slower, clearly_slower, accurate, infeasible])
    assert best.number == 0 and [r.number for r in tied] == [1]


def test_the_fastest_point_may_be_off_the_front():
    # ppocr-cls, 30 trials: OpenVINO fp16 0.578 ms and TFLite fp16 0.641 ms are a latency tie (a quarter octave),
    # both accuracy 1.0; the smaller TFLite file dominates, yet the fastest point is the OpenVINO one
    objectives = ("latency", "accuracy", "size")
    openvino = _record(14, 0.578, 0.575, 0.581, 1.0, size=2_800_000)
    tflite = _record(6, 0.641, 0.638, 0.644, 1.0, size=1_400_000)
    slow = _record(0, 0.859, 0.855, 0.863, 1.0, size=1_300_000)
    front = pareto_front([openvino, tflite, slow], objectives)
    assert [r.number for r in front] == [6, 0]
    best, tied = fastest([openvino, tflite, slow])
    assert best.number == 14 and [r.number for r in tied] == [6]


def test_constraints_are_checked_and_signed_as_optuna_wants():
    assert check_constraints({"max_latency_ms": 5}) == {"max_latency_ms": 5.0}
    with pytest.raises(InvalidOptionError, match="unknown constraint 'latency'"):
        check_constraints({"latency": 5})
    build = BuildOutcome(key="k", status="built", size_bytes=4000, cosine=0.99, top1_agreement=0.97)
    m = Measurement(status="complete", device="local:cpu", median_ms=2.0)
    values = constraint_values(build, m, {"max_latency_ms": 3.0, "min_top1": 0.98, "max_size_bytes": 4000})
    assert values == pytest.approx([-1.0, 0.01, 0.0])
