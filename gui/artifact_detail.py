"""The artifact detail pane of the Convert view: I/O with scale and zero point, ops by placement on the target,
the precision that really executed, where validation ran, and what was not checked and why."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from edgekit.gui.target_facts import not_checked
from edgekit.gui.widgets import human_size, item, table
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget


class ArtifactDetail(QWidget):
    """One artifact of a build, as the target will see it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click an artifact in the results to see its details", wordWrap=True)
        self.io = table(["", "name", "shape", "dtype", "scale", "zero point"], stretch=1)
        self.facts = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText,
                            textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.io)
        facts = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)  # long facts scroll, the results stay
        facts.setWidget(self.facts)
        layout.addWidget(facts, 1)

    def show_artifact(self, artifact: Any, profile: Any) -> None:
        """Fill the pane from an ``edgekit.Artifact`` of a build for ``profile`` (an ``edgekit.DeviceProfile``)."""
        from edgekit import shape_text

        self.title.setText(f"<b>{artifact.format} {artifact.precision}</b> · {escape(Path(artifact.path).name)} · "
                           f"{human_size(artifact.size_bytes)} · route {artifact.route}")
        self.io.setRowCount(0)
        for role, specs in (("in", artifact.inputs), ("out", artifact.outputs)):
            for spec in specs:
                row = self.io.rowCount()
                self.io.insertRow(row)
                quantized = spec.scale is not None
                cells = (role, spec.name, shape_text(spec.shape), spec.dtype,
                         f"{spec.scale:.6g}" if quantized else "-", str(spec.zero_point) if quantized else "-")
                for column, text in enumerate(cells):
                    self.io.setItem(row, column, item(text, "found" if quantized and column >= 4 else None))
        self.io.setMaximumHeight(40 + 26 * max(self.io.rowCount(), 1))
        self.facts.setText("<br>".join(artifact_facts(artifact, profile)))


def artifact_facts(artifact: Any, profile: Any) -> list[str]:
    """The pane's lines: ops by placement, executed precision, where validation ran, what was not checked."""
    report = artifact.compatibility
    stats = report.stats.get(artifact.format) if report is not None else None
    lines = []
    if stats is not None and stats.opset_known:
        on_accelerator = stats.ops_total - stats.ops_fallback
        where = "CPU fallback" if profile.cpu_fallback else "unsupported (no CPU fallback)"
        lines.append(f"<b>ops</b> {stats.ops_total}: {on_accelerator} on the accelerator, {stats.ops_fallback} {where} "
                     f"({stats.fallback_fraction:.0%} of the estimated compute)")
    elif stats is not None:
        placement = "all on the target CPU" if profile.device_class == "cpu" else "placement <b>not checked</b>"
        lines.append(f"<b>ops</b> {stats.ops_total}: {placement}")
    v = artifact.validation
    lines.append(f"<b>executed precision</b> {v.executed_precision or 'not reported'} (stored {artifact.precision})")
    if v.int8_weight_fraction is not None:
        lines.append(f"<b>int8 weights</b> {v.int8_weight_fraction:.0%} of the parameters")
    lines.append(f"<b>validation</b> {v.status} on {v.samples} samples of {v.data_origin.replace('_', ' ')}, run on this "
                 f"host's CPU, not on {profile.name}")
    static = [s.name for s in artifact.inputs if s.is_dynamic]
    if profile.static_shapes:
        fixed = "all fixed (static, as the target needs)"
        lines.append("<b>shapes</b> " + ("dynamic: " + ", ".join(static) if static else fixed))
    findings = report.findings if report is not None else ()
    lines.append(f"<b>findings</b> {len(findings)}" + ("" if findings or (stats and stats.opset_known) else
                                                        " — not the same as clean: see below"))
    unchecked = not_checked(profile, report, artifact.format)
    if unchecked:
        lines.append("<b>Not checked</b>")
        lines += [f"• {escape(line, quote=False)}" for line in unchecked]
    return lines
