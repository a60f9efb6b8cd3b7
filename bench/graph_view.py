"""Graph view speed: how long the desktop app takes to show a model graph placed on a target.

A residual ONNX network of about 500 nodes (125 blocks of Conv, Relu, Conv, Add; 8 channels) is shown the way
the Graph view shows it: ``edgekit.model_graph`` reads it and places every op on the target (``edgekit.check``
in its worker process), Graphviz's ``dot`` lays it out, the Qt scene is built and painted once (offscreen).
``through_job_process_s`` is the same as a user gets it, from Show graph to the drawn graph, with the job
process started for it (Python, edgekit and onnx imported there). Zoo ONNX models found in the zoo cache
are measured the same way. Each figure is the median of ``--rounds``.
The bar: under 2 s for the 500-node graph, end to end. Results go to bench/results/graph_view.json.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/graph_view.py [--rounds 3] [--target coral-edgetpu]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "graph_view.json"
ZOO = Path.home() / ".cache" / "edgekit" / "zoo" / "models"
BAR_SECONDS = 2.0


def residual_onnx(path: Path, blocks: int = 125, channels: int = 8) -> Path:
    """A residual CNN of ``4 * blocks`` nodes (Conv, Relu, Conv, Add per block) written to ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, current = [], [], "x"
    for b in range(blocks):
        for k in (0, 1):
            w = numpy_helper.from_array((rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32), f"w{b}_{k}")
            weights.append(w)
        nodes += [helper.make_node("Conv", [current, f"w{b}_0"], [f"c{b}a"], name=f"conv{b}a", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{b}a"], [f"r{b}"], name=f"relu{b}"),
                  helper.make_node("Conv", [f"r{b}", f"w{b}_1"], [f"c{b}b"], name=f"conv{b}b", pads=[1, 1, 1, 1]),
                  helper.make_node("Add", [current, f"c{b}b"], [f"y{b}"], name=f"add{b}")]
        current = f"y{b}"
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 16, 16])],
                              [helper.make_tensor_value_info(current, TensorProto.FLOAT, [1, channels, 16, 16])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def one_round(app, path: Path, target: str) -> dict[str, float]:
    """Seconds of each stage of showing ``path`` placed on ``target``."""
    from edgekit.gui.graph_layout import layout
    from edgekit.gui.graph_view import GraphView
    from PySide6.QtGui import QImage, QPainter

    import edgekit

    started = time.perf_counter()
    graph = edgekit.model_graph(path, target=target, isolate=False)  # as the app's job process does
    read = time.perf_counter()
    placed = layout(graph)
    laid = time.perf_counter()
    view = GraphView()
    view.resize(1400, 900)
    view.set_files([str(path)], target)
    view.show_graph(graph, placed)
    view.show()
    app.processEvents()
    built = time.perf_counter()
    image = QImage(1400, 900, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    view.scene.render(painter)  # every item painted once, the whole graph
    painter.end()
    painted = time.perf_counter()
    through_job = _through_job(app, view, path)
    view.close()
    view.deleteLater()
    return {"nodes": len(graph.nodes), "ops": len(graph.ops()), "edges": len(graph.edges),
            "placement": graph.placement_counts(), "read_and_place_s": read - started, "layout_s": laid - read,
            "scene_s": built - laid, "paint_s": painted - built, "total_s": painted - started,
            "through_job_process_s": through_job}


def _through_job(app, view, path: Path) -> float:
    """Seconds from Show graph to the drawn graph the way a user gets it: a job process started, read, laid out."""
    from PySide6.QtCore import QEventLoop, QTimer

    done = QEventLoop()
    view.runner.running_changed.connect(lambda running: running or done.quit())
    QTimer.singleShot(120_000, done.quit)
    started = time.perf_counter()
    view.show_file(str(path))
    done.exec()
    app.processEvents()
    return time.perf_counter() - started


def measure(app, path: Path, target: str, rounds: int) -> dict:
    runs = [one_round(app, path, target) for _ in range(rounds)]
    timing = {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0] if k.endswith("_s")}
    counts = {k: runs[0][k] for k in ("nodes", "ops", "edges", "placement")}
    return {"model": path.name, "target": target, "rounds": rounds, **counts,
            **timing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", default="coral-edgetpu")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        big = measure(app, residual_onnx(Path(tmp) / "residual500.onnx"), args.target, args.rounds)
    zoo = [measure(app, p, args.target, args.rounds) for p in sorted(ZOO.glob("**/*.onnx"))]
    result = {"bar_seconds": BAR_SECONDS, "passed": big["total_s"] < BAR_SECONDS, "graph_500": big, "zoo": zoo,
              "machine": {"cpus": os.cpu_count()},
              "note": "medians; read_and_place: edgekit.model_graph with edgekit.check in this process, as the job process runs it"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(big, indent=2))
    for row in zoo:
        print(f"{row['model']}: {row['ops']} ops, {row['total_s']:.2f} s")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
