"""Screenshots of the Graph view's int8 error trace and of zoo models, driven like a user would drive them.

Trains the digits classifier and converts it through the Convert view for cpu-x86 (fp32 + int8 TFLite), shows
the int8 TFLite graph traced by ``edgekit debug``, and, given ``--zoo-build`` (a build
folder of an ONNX zoo model with an int8 artifact and ``--zoo-data`` for it), that source model placed on
the Edge TPU and its int8 artifact traced. PNGs go to docs/screenshots/. Under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python examples/graph_screenshots.py [--zoo-build DIR --zoo-data X.npy]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from digits_demo import digits_split, train_classifier
from edgekit.gui.main_window import MainWindow
from gui_screenshots import settle, wait_until
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

SIZE = (1440, 900)


def convert(app: QApplication, window: MainWindow, target: str, precisions: list[str], out: Path) -> None:
    view = window.convert_view
    view.target.setCurrentIndex(view.target.findData(target))
    for name, box in view.format_boxes.items():
        box.setChecked(name == "tflite")
    for name, box in view.precision_boxes.items():
        box.setChecked(name in precisions)
    view.output_dir.edit.setText(str(out))
    builds = []
    view.build_ready.connect(builds.append)
    assert view.run()
    wait_until(app, lambda: bool(builds) or view.error.isVisible(), 900, f"the {target} build")
    view.build_ready.disconnect(builds.append)


def show_graph(app: QApplication, window: MainWindow, path: str, target: str, data: str = "") -> None:
    graph = window.graph_view
    window.show_view("Graph")
    graph.set_files([path], target)
    graph.data.edit.setText(data)
    assert graph.debug() if data else graph.show_file(path)
    wait_until(app, lambda: not graph.runner.running, 600, f"the graph of {Path(path).name}")
    culprit = next((n for n in graph.graph.ops() if n.culprit), None) if graph.graph else None
    if culprit is not None:
        graph.select_node(culprit.id)
    settle(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    parser.add_argument("--zoo-build", type=Path)
    parser.add_argument("--zoo-data", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="edgekit-graph-shots-"))
    x_train, x_test, y_train, _ = digits_split()
    model = train_classifier(x_train, y_train, work / "digits.keras")
    np.save(work / "calibration.npy", x_train[:200])
    np.save(work / "validation.npy", x_test[:100])

    app = QApplication.instance() or QApplication([])
    window = MainWindow(settings=QSettings(str(work / "gui.ini"), QSettings.Format.IniFormat), refresh_devices=False)
    window.resize(*SIZE)
    window.show()
    view = window.convert_view
    window.open_paths([str(model)])
    wait_until(app, lambda: view.io_table.rowCount() == 2, 120, "the model")
    view.calibration.edit.setText(str(work / "calibration.npy"))
    view.validation.edit.setText(str(work / "validation.npy"))
    convert(app, window, "cpu-x86", ["fp32", "int8"], work / "cpu")
    int8 = next(a.path for a in view.build.artifacts if a.precision == "int8")
    show_graph(app, window, int8, "cpu-x86", str(work / "validation.npy"))
    window.grab().save(str(args.out / "graph-digits-int8-error.png"))

    if args.zoo_build:
        import edgekit

        build = edgekit.load_build(args.zoo_build)
        show_graph(app, window, build.source.path, "coral-edgetpu")
        window.grab().save(str(args.out / "graph-zoo-placement.png"))
        for artifact in build.artifacts:
            if artifact.precision == "int8" and artifact.format in ("onnx", "openvino", "tflite"):
                show_graph(app, window, artifact.path, build.target, str(args.zoo_data))
                window.grab().save(str(args.out / f"graph-zoo-int8-{artifact.format}.png"))
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
