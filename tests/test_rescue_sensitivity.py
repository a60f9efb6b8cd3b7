"""The rescue's measured per-group sensitivity pass and the latency of every candidate, on real ONNX builds."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from debug_models import outlier_onnx

import edgekit
from edgekit.options import QuantScheme, Tolerances
from edgekit.rescue_remedies import Allowed, Remedy
from edgekit.rescue_search import Search, _gain, score
from edgekit.rescue_sensitivity import candidates, measured_order, uncertain
from edgekit.session import BuildSession, RouteJob

pytestmark = pytest.mark.slow  # real int8 builds, each timed in a profiling child


@pytest.fixture(scope="module")
def feeds() -> list[dict[str, np.ndarray]]:
    return [{"x": sample} for sample in np.random.default_rng(1).normal(size=(164, 1, 16)).astype(np.float32)]


def _plain(tmp_path: Path, feeds: list) -> tuple[BuildSession, RouteJob, edgekit.Artifact]:
    session = BuildSession()
    session.open(outlier_onnx())
    session.set_validation(feeds[100:])  # held out: the calibration set is feeds[:100]
    (tmp_path / "plain" / "staging").mkdir(parents=True)
    job = RouteJob(format="onnx", precision="int8", scheme=QuantScheme(), tolerances=Tolerances(cosine=0.999),
                   output_dir=tmp_path / "plain", staging_dir=tmp_path / "plain" / "staging", stem="model_int8",
                   calibration=feeds[:100])
    return session, job, session.build_route(job)


def test_the_measured_pass_ranks_groups_by_their_real_gain_and_times_each(tmp_path: Path, feeds: list) -> None:
    session, job, plain = _plain(tmp_path, feeds)
    target = job.tolerances
    search = Search(session.build_route, target, feeds[100:], Allowed(float_layers=True, int16=True), Path(),
                    tmp_path / "work", time.monotonic() + 600, job, plain)
    groups = [Remedy("float", "hidden", layers=("hidden",)),
              Remedy("float", "outlier", layers=("outlier/MatMulAddFusion", "head")),
              Remedy("float", "wide", layers=("wide",))]
    base = score(plain, target)
    ranked = measured_order(search, groups, lambda artifact: _gain(score(artifact, target), base))
    gains = {entry["layers"][0].split("/")[0]: entry["measured_gain"] for entry in search.sensitivity}
    assert list(gains) == ["hidden", "outlier", "wide"]  # every group measured, on the held-out validation data
    assert plain.validation.cosine < 0.5 and gains["outlier"] > 1.5  # top-1 + cosine: 1.94; the culprit's group, measured
    assert ranked[0].layers == ("outlier/MatMulAddFusion", "head") and all(gains[g.layers[0].split("/")[0]] > 0 for g in ranked)
    assert all(abs(gains[name]) < 0.1 for name in ("hidden", "wide"))  # healthy layers: no real gain
    for entry in search.tries:  # each candidate timed as edgekit profile times it
        assert entry["sensitivity"] and 0 < entry["latency_ms"] < 50 and entry["latency_runs"] >= 30
        ratio = round(entry["latency_ms"] / entry["plain_latency_ms"], 3)
        assert entry["plain_latency_ms"] > 0 and entry["latency_vs_plain"] == ratio
        low, high = entry["latency_ci_ms"]
        assert low <= entry["latency_ms"] <= high
    again = search._try([groups[1]])  # a candidate already built is not built again
    assert again is not None and len(search.tries) == 3


def test_the_pass_stops_measuring_on_the_budget(tmp_path: Path, feeds: list) -> None:
    session, job, plain = _plain(tmp_path, feeds)
    search = Search(session.build_route, job.tolerances, feeds[100:], Allowed(float_layers=True, int16=True), Path(),
                    tmp_path / "work", time.monotonic() - 1, job, plain)
    groups = [Remedy("float", name, layers=(name,)) for name in ("hidden", "wide", "head")]
    assert measured_order(search, groups, lambda artifact: 1.0) == [] and search.tries == []
    assert search.stop == "time budget" and "measured 0 of 3 groups" in search.notes[-1]


def test_uncertain_attribution_and_its_candidates(tmp_path: Path, feeds: list) -> None:
    edgekit.convert(outlier_onnx(), formats="onnx", precision=["fp32", "int8"], output_dir=tmp_path, rescue=False,
                    calibration_data=np.stack([f["x"] for f in feeds[:100]]),
                    validation_data=np.stack([f["x"] for f in feeds[100:]]))
    report = edgekit.debug(tmp_path / "model_int8.onnx", np.stack([f["x"] for f in feeds[100:]]))
    assert report.culprits[0].name.startswith("outlier") and report.culprits[0].share >= 0.4
    assert not uncertain(report)  # one culprit explains most of the error: the attribution is trusted
    flat = report.model_copy(update={"culprits": [report.culprits[0].model_copy(update={"share": 0.1})]})
    assert uncertain(flat) and uncertain(report.model_copy(update={"culprits": []}))
    found = candidates([], report, kept={"head"}, limit=3)
    assert len(found) == 3 and all(len(g.layers) == 1 and g.layers[0] != "head" for g in found)
    added = {layer.name: layer.added_error for layer in report.layers}
    assert [added[g.layers[0]] for g in found] == sorted((added[g.layers[0]] for g in found), reverse=True)


def test_an_integer_only_device_gets_no_measured_float_group(tmp_path: Path, feeds: list) -> None:
    session, job, plain = _plain(tmp_path, feeds)
    edgekit.convert(outlier_onnx(), formats="onnx", precision="fp32", output_dir=tmp_path / "fp32", rescue=False)
    report = edgekit.debug(plain.path, np.stack([f["x"] for f in feeds[100:116]]), reference=tmp_path / "fp32" / "model_fp32.onnx")
    flat = report.model_copy(update={"culprits": []})  # as if no layer stood out
    search = Search(session.build_route, job.tolerances, feeds[100:], Allowed(float_layers=False, int16=False), Path(),
                    tmp_path / "work", time.monotonic() + 600, job, plain, curve=[{}], timed=False)
    search._round(flat)
    kinds = [r["kind"] for t in search.tries for r in t["remedies"]]
    assert kinds and all(kind not in ("float", "head_float", "elementwise_float") for kind in kinds), kinds
    assert search.sensitivity == [] and search.curve[0]["attribution"].startswith("uncertain")
