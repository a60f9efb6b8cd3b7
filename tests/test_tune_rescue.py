"""edgekit tune takes each int8 format's float-layer sets from the int8 rescue's curve when plain int8 misses the
accuracy the study asks for, on the planted-outlier digits CNN (exported to ONNX): the sets are the curve's, in the
order walked; its last point is a trial; the notes say where the sets came from; the trace prefixes are the fallback;
a resumed study does not rescue again."""
from __future__ import annotations

from pathlib import Path

import pytest

import edgekit
from edgekit.errors import InvalidOptionError
from edgekit.manifest import read_manifest
from edgekit.options import Tolerances
from edgekit.profiles import load_profile
from edgekit.tune.prime import accuracy_target, reach
from edgekit.tune.space import base_space, curve_sets, prefix_sets, with_sets
from edgekit.tune.tasks import BuildOutcome, CurvePoint, RescueCurve

#: ONNX Runtime's int8 on this model: the plain artifact is ruined (cosine 0.32), the outlier's MatMul and the head
#: in float fix it (0.99992), and this target asks for more than float layers give (percentile, then int16)
CONSTRAINTS = {"min_cosine": 0.99999}
SEARCH = {"formats": ["onnx"], "threads": [1], "runs": 10, "min_seconds": 0.1, "warmup": 2, "seed": 3, "batch": 2,
          "objectives": ("latency", "accuracy", "size")}
PLAIN_SCHEME = {"per_channel": True, "symmetric_weights": True, "symmetric_activations": False, "io_dtype": "float32",
                "activations": "int8", "calibration_method": "minmax", "bias_correction": "auto", "smooth_quant": False,
                "weight_range": "auto"}


@pytest.fixture(scope="module")
def outlier_cnn(tmp_path_factory, digits) -> dict:
    import onnx
    from tune_models import make_outlier_cnn

    cnn = make_outlier_cnn(tmp_path_factory.mktemp("outlier-cnn"), digits)
    # Keras numbers its models per process (functional_1, functional_1_1, ...): the prefix is read from the file;
    # ONNX Runtime's optimizer fuses each MatMul with its bias Add before quantizing (the names the rescue keeps)
    prefix = onnx.load(str(cnn["model"])).graph.node[0].name.split("/")[0]
    pair = tuple(f"{prefix}/{layer}_1/MatMul/MatMulAddFusion" for layer in ("outlier", "head"))
    return {**cnn, "pair": pair}


def _tune(cnn: dict[str, Path], out: Path, events: list[str] | None = None, **options):
    stages = events if events is not None else []
    return edgekit.tune(cnn["model"], calibration_data=cnn["calibration"], validation_data=cnn["validation"],
                        output_dir=out, progress=lambda e: stages.append(e.stage), **{**SEARCH, **options})


@pytest.mark.slow
def test_the_float_sets_are_the_rescue_curve_and_a_resume_does_not_rescue_again(outlier_cnn, tmp_path):
    events: list[str] = []
    result = _tune(outlier_cnn, tmp_path / "build", events, constraints=CONSTRAINTS, trials=3)
    curve = result.rescue["onnx"]
    # the rescue's own record, in the manifest of its build (cached in the tune folder like a trial's)
    record = read_manifest(curve.outcome.build_dir)["config"]["run"]["rescue"]["onnx/int8"]
    assert record["target"]["cosine"] == 0.99999 and record["met"] and curve.met and curve.stopped == "target met"
    assert [p.float_layers for p in curve.points] == [tuple(p["float_layers"]) for p in record["curve"]]
    assert [p.cosine for p in curve.points] == [p["cosine"] for p in record["curve"]]
    cosines = [p.cosine for p in curve.points]
    # percentile calibration is a step where it helps: with 8-bit weights (a CPU with VNNI) 0.319, 0.99992, then
    # percentile, then int16 0.999995; with 7-bit weights (edgekit.cpu_int8) 0.328, 0.99997, int16 0.999992
    remedies = [p.remedies for p in curve.points]
    calibrated = ("calibration",) in remedies
    assert remedies == [(), ("float",), *[("calibration",)] * calibrated, ("int16_activations",)]
    assert cosines[0] < 0.5 and 0.9999 < cosines[1] < 0.99999 and cosines[-1] >= 0.99999
    assert cosines == sorted(cosines)
    assert [p.float_layers for p in curve.points] == [(), *[outlier_cnn["pair"]] * (len(remedies) - 1)]
    calibration = "percentile" if calibrated else "minmax"
    assert curve.points[-1].scheme == {**PLAIN_SCHEME, "calibration_method": calibration, "activations": "int16"}
    assert 0.99 < curve.points[-1].int8_compute_share < 1.0  # the head and the outlier layer: under 1% of the MACs
    # the space: the curve's float-layer sets in the order walked, not the trace's prefixes
    assert result.space.formats["onnx"].float_sets == ((), outlier_cnn["pair"])
    notes = [n for n in result.notes if n.startswith("onnx: float-layer sets")]
    assert notes == [f"onnx: float-layer sets from the rescue curve ({len(remedies)} points, cosine {cosines[0]:.6g} -> "
                     f"{cosines[-1]:.6g}; "
                     f"2 float-layer sets; target met, stopped on target met, {curve.seconds} s of a "
                     f"{curve.budget_s:.6g} s budget)"]
    assert not any("does not hold" in n for n in result.notes)  # percentile and int16 are dimensions of the space
    assert curve.budget_s == pytest.approx(120 + 240 * curve.points[0].size_bytes / 2**20)  # rescue.default_budget
    # the trials: fp32, plain int8, then the rescue's last point, built again as a trial: the same artifact
    assert [(r.config.precision, r.config.float_layers) for r in result.trials] == [
        ("fp32", ()), ("int8", ()), ("int8", outlier_cnn["pair"])]
    rescued = result.trials[2]
    assert rescued.config.quantization == {"per_channel": True, "calibration_method": calibration, "activations": "int16"}
    assert rescued.state == "complete" and rescued.build.cosine == pytest.approx(cosines[-1], abs=1e-9)
    assert result.trials[1].build.cosine == pytest.approx(cosines[0], abs=1e-9)
    assert rescued.feasible and not result.trials[1].feasible  # min_cosine 0.99999
    assert events.count("tune:rescue") == 2 and "tune:trace" in events
    # resumed: the space, the curve and the notes from the study, no rescue or trace, one more trial
    again: list[str] = []
    resumed = _tune(outlier_cnn, tmp_path / "build", again, constraints=CONSTRAINTS, trials=4)
    assert "tune:rescue" not in again and "tune:trace" not in again and "tune:build" in again
    assert resumed.space == result.space and resumed.rescue == result.rescue
    assert [n for n in resumed.notes if n.startswith("onnx: float-layer sets")] == notes
    assert len(resumed.trials) >= 4 and resumed.trials[:3] == result.trials
    html = (Path(resumed.folder) / "tune-report.html").read_text()
    assert "Float-layer sets from the int8 rescue" in html and "int16_activations" in html


@pytest.mark.slow
@pytest.mark.parametrize(("budget", "why"), [
    (0, "the rescue is off (rescue_budget=0)"),
    (0.001, "the rescue gave no curve: it accepted no step (stopped on time budget)"),  # ran, out of time at once
])
def test_without_a_rescue_curve_the_float_sets_are_trace_prefixes(outlier_cnn, tmp_path, budget, why):
    """No rescue, or one that accepted no step: the divergence trace's ranked culprits; with no constraint the
    target is the profile's int8 tolerances (cosine 0.98, top-1 0.95), which plain int8 misses too."""
    from edgekit.tune.tasks import TraceRequest, trace_culprits

    events: list[str] = []
    result = _tune(outlier_cnn, tmp_path / "build", events, trials=2, rescue_budget=budget)
    assert result.rescue == {} and ("tune:rescue" in events) == (budget > 0)
    sets = result.space.formats["onnx"].float_sets
    plain, fp32 = result.trials[1].build, result.trials[0].build
    groups = trace_culprits(TraceRequest(artifact=plain.artifact, reference=fp32.artifact, data=str(outlier_cnn["validation"])))
    assert sets == prefix_sets(groups)
    # one culprit group here, the outlier layer with the head: the same layers as the rescue's step, as a guess
    assert sets == ((), outlier_cnn["pair"]) and f"onnx: float-layer sets from the divergence trace of plain int8 (1 prefix " \
           f"of its ranked culprits; {why})" in result.notes
    assert plain.cosine < 0.5 and [r.config.precision for r in result.trials] == ["fp32", "int8"]


def _curve(*steps: dict) -> RescueCurve:
    points = [CurvePoint(float_layers=(), scheme=PLAIN_SCHEME, cosine=0.3)]
    points += [CurvePoint(float_layers=layers, scheme={**PLAIN_SCHEME, **scheme}, cosine=cosine)
               for layers, scheme, cosine in steps]
    return RescueCurve(label="onnx/int8", outcome=BuildOutcome(key="k", status="built"), points=tuple(points))


def test_curve_points_the_space_cannot_hold_are_said_and_not_enqueued():
    space = base_space(load_profile("cpu-x86"), "onnx", cores=1, formats=("onnx", "openvino"))
    assert curve_sets([(), ("a",), ("a",), ("a", "b")]) == ((), ("a",), ("a", "b"))
    space = with_sets(space, {"onnx": curve_sets([("a",), ("a", "b")])})
    config, notes = reach(_curve((("a",), {}, 0.9), (("a", "b"), {"activations": "int16"}, 0.99)), space, "onnx")
    assert notes == [] and config.float_layers == ("a", "b")
    assert config.quantization == {"per_channel": True, "calibration_method": "minmax", "activations": "int16"}
    # OpenVINO: NNCF's full bias correction is a rescue remedy but not a tune dimension
    config, notes = reach(_curve((("a",), {"bias_correction": "full"}, 0.97), (("a", "b"), {}, 0.99)), space, "openvino")
    assert config is not None and notes == [
        "openvino: rescue step 1 (cosine 0.97) also changed bias_correction=full, which the tune space does not hold: "
        "its float-layer set is searched with the space's schemes"]
    config, notes = reach(_curve((("a",), {"activations": "int16"}, 0.99)), space, "openvino")  # NNCF: int8 only
    assert config is None and "activations=int16" in notes[0]


def test_the_rescue_target_is_the_constraints_or_the_int8_tolerances():
    int8 = Tolerances.default_for("int8")
    assert accuracy_target({"min_cosine": 0.995, "max_latency_ms": 3}, int8) == {"cosine": 0.995}
    assert accuracy_target({"min_top1": 0.97}, int8) == {"top1": 0.97}
    assert accuracy_target({"min_accuracy": 0.9}, int8) == {"cosine": 0.98, "top1": 0.95}
    with pytest.raises(InvalidOptionError, match="rescue_budget=-1 is not a number of seconds"):
        edgekit.tune(Path(__file__), rescue_budget=-1, output_dir=Path("/nonexistent/b"))
