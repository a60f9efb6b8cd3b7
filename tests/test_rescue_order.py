"""The rescue's order on an uncertain attribution: by expected gain per second of build time, int16 activations
before the elementwise float group and the measured sensitivity pass; and the calibration remedies it plans."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from debug_models import spread_onnx

import edgekit
from edgekit.divergence.report import DivergenceReport, LayerDivergence
from edgekit.manifest import read_manifest
from edgekit.rescue_order import SENSITIVITY, build_seconds, plan
from edgekit.options import QuantScheme, Tolerances
from edgekit.rescue import _slower_than_float
from edgekit.rescue_remedies import Allowed, Remedy, scheme_remedies
from edgekit.rescue_search import Search
from edgekit.session import RouteJob
from edgekit.rescue_sensitivity import uncertain


def _layer(index: int, name: str, op_type: str, added: float) -> LayerDivergence:
    return LayerDivergence(index=index, name=name, key=name, op_type=op_type, cosine=1 - added, relative_error=added,
                           error=added, inherited_error=0.0, added_error=added, evaluation_range=(-1.0, 1.0),
                           outlier_ratio=1.0)


def _report() -> DivergenceReport:
    """Ten MatMuls and thirty elementwise ops adding the same error each: no culprit."""
    layers = [_layer(i, f"mm{i}", "MatMul", 0.001) for i in range(10)]
    layers += [_layer(10 + i, f"ew{i}", "Mul", 0.001) for i in range(30)]
    return DivergenceReport(artifact="a.onnx", format="onnx", precision="int8", reference="r.onnx", samples=16,
                            layers=layers, culprits=[])


_INT16 = Remedy("int16_activations", "int16 activations, int8 weights", scheme=(("activations", "int16"),))
_PERCENTILE = Remedy("calibration", "percentile calibration", scheme=(("calibration_method", "percentile"),))
_ELEMENTWISE = Remedy("elementwise_float", "elementwise ops in float", layers=tuple(f"ew{i}" for i in range(30)))
_MEASURED = [Remedy("float", f"mm{i}", layers=(f"mm{i}",)) for i in range(8)]


def test_with_no_build_timed_int16_comes_first_and_the_measured_pass_last() -> None:
    report = _report()
    steps = plan([_PERCENTILE, _INT16], _ELEMENTWISE, _MEASURED, report, build_seconds([]), set())
    assert [s.kind for s in steps] == ["int16_activations", "calibration", "elementwise_float", SENSITIVITY]
    assert [s.expected_share for s in steps] == pytest.approx([0.9, 0.4, 0.375, 0.1])  # elementwise: half of its 75% of the error
    assert steps[-1].builds == 8 + 3 + 1 and steps[-1].seconds == 12.0  # each group, then the greedy's prefixes
    assert steps[0].record() == {"kind": "int16_activations", "detail": "int16 activations, int8 weights",
                                 "expected_share": 0.9, "builds": 1, "expected_s": 1.0, "share_per_s": 0.9}


def test_measured_build_times_reorder_the_plan() -> None:
    tries = [{"remedies": [{"kind": "int16_activations"}], "seconds": 100.0},
             {"remedies": [{"kind": "calibration"}], "seconds": 10.0},
             {"remedies": [{"kind": "elementwise_float"}], "seconds": 20.0, "error": "failed"}]  # failed: not timed
    seconds = build_seconds(tries)
    assert seconds("int16_activations") == 100.0 and seconds("float") == 55.0  # no float build yet: the mean
    steps = plan([_PERCENTILE, _INT16], _ELEMENTWISE, [], _report(), seconds, set())
    assert [s.kind for s in steps] == ["calibration", "int16_activations", "elementwise_float"]  # 0.04, 0.009, 0.0068
    assert steps[2].seconds == 55.0  # no elementwise build timed (the failed one is not counted): the mean
    entropy = Remedy("calibration", "entropy calibration", scheme=(("calibration_method", "entropy"),))
    again = plan([entropy], None, [], _report(), seconds, {"percentile calibration"})
    assert again[0].expected_share == 0.2  # a second calibration method after the first: half
    retried = plan([_INT16, _PERCENTILE], None, _MEASURED, _report(), build_seconds([]), {_INT16.detail}, {_INT16.detail})
    assert [s.kind for s in retried] == ["calibration", SENSITIVITY, "int16_activations"]  # rejected before: last
    assert retried[-1].record()["retry"] and "retry" not in retried[0].record()


def test_a_scheme_change_rejected_is_proposed_again_once_the_float_layers_changed(tmp_path: Path) -> None:
    job = RouteJob(format="onnx", precision="int8", scheme=QuantScheme(), tolerances=Tolerances.default_for("int8"),
                   output_dir=tmp_path, staging_dir=tmp_path, stem="m")
    search = Search(lambda j: None, job.tolerances, [], Allowed(float_layers=True, int16=True), Path(), tmp_path, 0.0,
                    job, SimpleNamespace(path="plain.onnx"))
    search.tried = {_INT16.detail, _PERCENTILE.detail, "p2o.Conv.3 (added error 0.0883)"}
    search.rejected = {_INT16.detail: frozenset()}  # int16 alone was built and rejected on the plain job
    assert search._not_retried() == search.tried  # the same job: not again
    search.job = replace(job, float_layers=("p2o.Conv.3",))
    assert search._not_retried() == {_PERCENTILE.detail, "p2o.Conv.3 (added error 0.0883)"}
    assert [r.kind for r in scheme_remedies(search.job, search.allowed, set(), search._not_retried())] == ["int16_activations"]


def test_a_rescued_artifact_slower_than_fp32_says_so(tmp_path: Path) -> None:
    int16 = RouteJob(format="onnx", precision="int8", scheme=QuantScheme(activations="int16"),
                     tolerances=Tolerances.default_for("int8"), output_dir=tmp_path, staging_dir=tmp_path, stem="m")
    (note,) = _slower_than_float(120.7, 59.2, int16)
    assert note.startswith("the rescued artifact's median latency (121 ms) is above the fp32 reference's (59.2 ms")
    assert "int16 activations run float kernels" in note
    (plain,) = _slower_than_float(70.0, 59.2, RouteJob(**{**int16.__dict__, "scheme": QuantScheme()}))
    assert "int16" not in plain
    assert _slower_than_float(43.9, 59.2, int16) == []
    assert _slower_than_float(None, 59.2, int16) == []


@pytest.mark.slow
def test_onnx_runtime_entropy_calibration_is_min_max_so_it_is_not_proposed(tmp_path: Path) -> None:
    import onnx

    data = np.random.default_rng(1).normal(size=(164, 1, 16)).astype(np.float32)
    weights = {}
    for method in ("minmax", "entropy"):
        edgekit.convert(spread_onnx(), output_dir=tmp_path / method, formats="onnx", precision="int8", rescue=False,
                        calibration_data=data[:100], validation_data=data[100:],
                        quantization={"calibration_method": method})
        graph = onnx.load(str(tmp_path / method / "model_int8.onnx")).graph
        weights[method] = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    assert len(weights["minmax"]) == 95 and weights["entropy"].keys() == weights["minmax"].keys()
    assert all(np.array_equal(weights["entropy"][k], weights["minmax"][k]) for k in weights["minmax"])  # every scale
    for fmt, proposed in (("onnx", []), ("openvino", ["entropy calibration"])):
        job = RouteJob(format=fmt, precision="int8", scheme=QuantScheme(calibration_method="percentile"),
                       tolerances=Tolerances.default_for("int8"), output_dir=tmp_path, staging_dir=tmp_path, stem="m")
        found = scheme_remedies(job, Allowed(float_layers=True, int16=True), set(), set())
        assert [r.detail for r in found if r.kind == "calibration"] == proposed


@pytest.mark.slow
def test_a_spread_error_is_rescued_by_int16_in_one_build(tmp_path: Path) -> None:
    data = np.random.default_rng(1).normal(size=(164, 1, 16)).astype(np.float32)
    common = dict(formats="onnx", calibration_data=data[:100], validation_data=data[100:])
    plain = edgekit.convert(spread_onnx(), output_dir=tmp_path / "plain", precision=["fp32", "int8"], rescue=False, **common)
    common["precision"] = "int8"
    report = edgekit.debug(plain.artifact("onnx", "int8").path, data[100:])
    assert uncertain(report) and report.culprits[0].share < 0.2  # top culprit: the head MatMul, 17% of the error
    elementwise = [layer.name for layer in report.layers if layer.op_type in ("Add", "Mul", "Div", "Clip")]
    others = {"percentile": dict(quantization={"calibration_method": "percentile"}),
              "elementwise": dict(float_layers=elementwise)}
    cosines = {name: edgekit.convert(spread_onnx(), output_dir=tmp_path / name, rescue=False, **common, **extra)
               .artifact("onnx", "int8").validation.cosine for name, extra in others.items()}
    plain_cosine = plain.artifact("onnx", "int8").validation.cosine
    assert plain_cosine == pytest.approx(0.99868, abs=1e-4)
    # neither percentile calibration nor the elementwise layers in float reach the target below (0.99870 and
    # 0.99909 with 8-bit weights, 0.99846 and 0.99893 with 7-bit ones, edgekit.cpu_int8): the error is spread
    assert cosines.keys() == {"percentile", "elementwise"}
    assert all(abs(c - plain_cosine) < 5e-4 and c < 0.9992 for c in cosines.values()), cosines

    edgekit.convert(spread_onnx(), output_dir=tmp_path / "rescued", accuracy_target={"cosine": 0.9992}, **common)
    record = read_manifest(tmp_path / "rescued")["config"]["run"]["rescue"]["onnx/int8"]
    order = [step["kind"] for step in record["curve"][0]["order"]]
    assert order[0] == "int16_activations" and order.index("elementwise_float") < order.index(SENSITIVITY)
    assert record["curve"][0]["attribution"].startswith("uncertain")
    assert [[r["kind"] for r in t["remedies"]] for t in record["tries"]] == [["int16_activations"]]
    assert record["met"] and record["stopped"] == "target met" and record["cosine"] == pytest.approx(0.99933, abs=2e-5)
    assert record["scheme_changes"] == {"activations": "int16"} and record["float_layers"] == []
    assert record["int8_compute_share"] == 1.0
