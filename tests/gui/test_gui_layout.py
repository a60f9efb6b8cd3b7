"""Layout from 1024x700 to 1920x1080: the columns that matter stay in view, plots scale and export with titles."""
from __future__ import annotations

import pytest
from test_gui_status import _onnx_model
from test_gui_verdicts import _build


def _visible(widget, column: int) -> bool:
    """A column is shown and lies inside the table's visible width (not behind its scrollbar)."""
    header = widget.horizontalHeader()
    right = widget.columnViewportPosition(column) + widget.columnWidth(column)
    return not header.isSectionHidden(column) and widget.columnViewportPosition(column) >= 0 and \
        right <= widget.viewport().width() + 1


def _settle(qtbot, window, size) -> None:
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5_000)
    qtbot.wait(50)


@pytest.mark.parametrize("size", [(1024, 700), (1920, 1080)])
def test_convert_results_keep_verdict_columns_in_view(window, qtbot, tmp_path, size):
    view = window.convert_view
    view.show_build(_build(tmp_path, 64, 2))
    _settle(qtbot, window, size)
    results = view.results
    origin = results.mapTo(window, results.rect().topLeft())
    assert origin.x() >= 0 and origin.x() + results.width() <= window.width()  # nothing cut off on the left
    for column in (0, 1, 3, 4, 8):  # format, precision, accuracy, cosine, status
        assert _visible(results, column), (size, column, view.result_columns.hidden())
    hidden = view.result_columns.hidden()
    assert (hidden != []) == (size == (1024, 700))  # only the small window gives up low-priority columns
    assert set(hidden) <= {9, 6, 7, 2, 5}


def test_profile_table_plots_log_scale_and_combined_report(window, qtbot, tmp_path):
    import edgekit

    profile = window.profile_view
    profile.set_artifacts([str(_onnx_model(tmp_path / "alpha.onnx", 3))])
    profile.runs.setValue(5)
    profile.min_seconds.setValue(0.0)
    profile.op_runs.setValue(0)
    with qtbot.waitSignal(profile.runner.succeeded, timeout=120_000):
        assert profile.run()
    window.show_view("Profile")
    for size in ((1024, 700), (1320, 860), (1920, 1080)):
        _settle(qtbot, window, size)
        for column in (0, 3, 8, 9):  # artifact, median, accuracy, status
            assert _visible(profile.results, column), (size, column)
    profile.log_scale.setChecked(True)
    assert profile.latency_plot.figure.axes[0].get_xscale() == "log"
    assert profile.comparison_plot.figure.axes[0].get_xscale() == "log"
    profile.log_scale.setChecked(False)
    assert profile.latency_plot.figure.axes[0].get_xscale() == "linear"

    report = profile.reports[0]
    agent = "agent://10.0.0.7:8765"
    other = report.model_copy(update={"device": agent, "results": tuple(r.model_copy(update={"device": agent})
                                                                         for r in report.results)})
    profile.show_reports([report, other])
    assert profile.comparison_plot.drawn == 2
    labels = [t.get_text() for t in profile.comparison_plot.figure.axes[0].texts]
    assert labels == ["onnx · cpu\n0 KB", "onnx · agent://10.0.0.7:8765\n0 KB"]
    [page] = profile.export(str(tmp_path / "all.html"), "html")
    html = page.read_text()
    assert page.name == "all.html" and html.count("<h2>edgekit profile · ") == 2
    assert "<figcaption>Median latency across devices (ms)</figcaption>" in html
    assert "<figcaption>Latency distribution: onnx · alpha.onnx (5 runs)</figcaption>" in html
    single = edgekit.ProfileReport.model_validate(report.model_dump()).save_html(tmp_path / "one.html").read_text()
    assert "<figcaption>Latency distribution" in single and "<h1>edgekit profile · local:cpu</h1>" in single
