"""A screenshot of the desktop app's Tune view, driven like a user would drive it.

Makes the small ONNX digits classifier of the tune tests (random ReLU features and a least-squares readout),
tunes it for cpu-x86 over ONNX Runtime and OpenVINO builds through the Tune view (each trial a real build,
validated and measured on this machine), selects the fastest front point and saves docs/screenshots/tune.png:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python examples/gui_screenshot_tune.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from edgekit.gui.jobs import TuneSettings
from edgekit.gui.main_window import MainWindow
from gui_screenshots import SIZE, settle, wait_until
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tune_models import make_mlp  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="edgekit-gui-tune-"))
    files = make_mlp(work)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(settings=QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat), refresh_devices=False)
    window.resize(SIZE[0], SIZE[1] + 80)
    window.show()
    window.show_view("Tune")
    view = window.tune_view
    view.set_settings(TuneSettings(model=str(files["model"]), target="cpu-x86", formats=["onnx", "openvino"],
                                   trials=args.trials, seed=1, calibration_data=str(files["calibration"]),
                                   validation_data=str(files["validation"]), output_dir=str(work / "build"), runs=30,
                                   min_seconds=0.3, constraints={"min_accuracy": 0.99}))
    if not view.run():
        raise SystemExit("the tune did not start")
    wait_until(app, lambda: not view.runner.running, 1800, "the tune")
    if view.error.isVisible():
        raise SystemExit(f"the tune failed: {view.error.message.text()} ({view.error.hint.text()})")
    best = view.result.front[0].number
    view.table.selectRow(next(r for r in range(view.table.rowCount()) if int(view.table.item(r, 0).text()) == best))
    settle(app, 1.0)
    window.grab().save(str(args.out / "tune.png"))
    print(f"wrote {args.out / 'tune.png'}: {view.summary.text()}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
