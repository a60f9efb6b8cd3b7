"""The Convert view shows a verdict's interval and an inconclusive status, and the calibration-data report."""
from __future__ import annotations

import numpy as np

from edgekit.data_checks import LayerCoverage, class_findings, coverage_findings, summarize
from edgekit.options import Tolerances
from edgekit.specs import Artifact, Build, ModelSource, TensorSpec
from edgekit.validation import compare

LOGITS = TensorSpec(name="logits", shape=(None, 7), dtype="float32")


def _build(tmp_path, n: int, disagree: int) -> Build:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((n, 7))
    actual = reference.copy()
    actual[:disagree] = actual[:disagree][:, ::-1]
    validation = compare([{"logits": r[None]} for r in reference], [{"logits": a[None]} for a in actual], (LOGITS,),
                         Tolerances(cosine=-1.0, top1_agreement=0.95), classifier=True, data_origin="held_out")
    source = ModelSource(framework="onnx", kind="onnx", inputs=(TensorSpec(name="x", shape=(None, 4), dtype="float32"),),
                         outputs=(LOGITS,))
    artifact = Artifact(format="onnx", precision="int8", route="onnx_onnx", path=str(tmp_path / "m.onnx"), files=(),
                        size_bytes=1000, sha256="0" * 64, inputs=source.inputs, outputs=source.outputs,
                        validation=validation, convert_seconds=0.1)
    return Build(output_dir=str(tmp_path), manifest_path=str(tmp_path / "m.json"), source=source, target="cpu-x86",
                 artifacts=(artifact,))


def test_an_inconclusive_verdict_shows_its_interval_and_status(window, tmp_path):
    view = window.convert_view
    build = _build(tmp_path, 64, 2)  # 62/64 agree: [0.892, 0.996] straddles 0.95
    view.show_build(build)
    assert view.results.item(0, 8).text() == "inconclusive"
    assert view.results.item(0, 5).text() == "0.969\n[0.892, 0.996]"
    assert "on 64 samples of held_out" in view.results.item(0, 8).toolTip()
    assert view.findings.item(0, 2).text() == "validation" and "would decide it" in view.findings.item(0, 3).text()
    view.show_build(_build(tmp_path, 500, 1))
    assert view.results.item(0, 8).text() == "passed" and view.results.item(0, 5).text().startswith("0.998\n[0.989")


def test_the_data_panel_shows_findings_with_hints_and_the_worst_layers(window):
    view = window.convert_view
    rng = np.random.default_rng(0)
    report = summarize([{"x": np.round(rng.uniform(0, 255, (1, 4))).astype(np.float32)} for _ in range(40)])
    rows = [LayerCoverage(layer="conv", calibration_range=(0.0, 1.0), validation_range=(0.0, 2.0), coverage=0.5, clipped=0.1)]
    histogram = {"3": 38, "1": 2}
    report = report.model_copy(update={"coverage": rows, "class_histogram": histogram,
                                       "findings": [*report.findings, *class_findings(histogram), *coverage_findings(rows)]})
    view.data_panel.show_report(report)
    codes = [view.data_panel.findings.item(r, 1).text() for r in range(view.data_panel.findings.rowCount())]
    assert any("but the model expects about [0, 1]" in c for c in codes) and any("predicted as class 3" in c for c in codes)
    assert any("x / 255" in view.data_panel.findings.item(r, 2).text() for r in range(len(codes)))
    assert view.data_panel.coverage.item(0, 0).text() == "conv" and view.data_panel.coverage.item(0, 3).text() == "50%"
    assert "40 calibration samples" in view.data_panel.summary.text() and "3 warning(s)" in view.data_panel.summary.text()
    assert not view.check_data()  # no model chosen: refused inline
    assert "needs a model and calibration data" in view.error.message.text()
