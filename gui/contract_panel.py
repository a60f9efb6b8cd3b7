"""The deployment contract in the Convert view: an editor for the contract declared before conversion (YAML,
checked with ``edgekit.contract_from_yaml``) and a read-only view of the contract each built artifact carries."""
from __future__ import annotations

from typing import Any

from edgekit.gui.widgets import item, table
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QTabWidget, QVBoxLayout, QWidget

import edgekit
from edgekit.errors import EdgekitError

EXAMPLE = """\
# The deployment contract (empty: inferred from the model and its calibration data).
# inputs:
#   - name: image
#     kind: image        # image, audio, tensor, tokens
#     color: RGB         # RGB, BGR, GRAY
#     range: [0, 1]      # or mean: [0.485, 0.456, 0.406] and std: [0.229, 0.224, 0.225]
#     resize: stretch    # stretch, center_crop, letterbox
# outputs:
#   - name: probabilities
#     kind: probabilities
#     labels: [cat, dog]
"""
COLUMNS = ["", "name", "kind", "layout", "shape", "dtype", "preprocessing / reading", "inferred from"]


def describe(entry: Any) -> str:
    """The preprocessing (inputs) or reading (outputs) fields of a contract entry, in one line."""
    parts = []
    for field in ("color", "range", "mean", "std", "resize", "sample_rate", "frame_size", "score_threshold"):
        value = getattr(entry, field, None)
        if value is not None:
            parts.append(f"{field} {list(value) if isinstance(value, tuple) else value}")
    if getattr(entry, "scale", None) is not None:
        parts.append(f"quantized scale {entry.scale:.4g} zero point {entry.zero_point}")
    labels = getattr(entry, "labels", None)
    if labels:
        parts.append(f"{len(labels)} labels: {', '.join(labels[:4])}{' ...' if len(labels) > 4 else ''}")
    return ", ".join(parts) or "-"


class ContractPanel(QWidget):
    """Editor (before conversion) and per-artifact view (after) of the deployment contract."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = QPlainTextEdit(placeholderText=EXAMPLE)
        self.editor.setPlainText("")
        self.status = QLabel("No contract declared: it is inferred and shown here after the build", wordWrap=True)
        check = QPushButton("Check contract")
        check.clicked.connect(self.check)
        edit = QWidget()
        edit_layout = QVBoxLayout(edit)
        edit_layout.addWidget(self.editor, 1)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(check)
        edit_layout.addLayout(row)
        self.artifact = QComboBox()
        self.artifact.currentIndexChanged.connect(self._show_selected)
        self.entries = table(COLUMNS, stretch=6)
        self.hashes = QLabel("", wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        view = QWidget()
        view_layout = QVBoxLayout(view)
        view_layout.addWidget(self.artifact)
        view_layout.addWidget(self.entries, 1)
        view_layout.addWidget(self.hashes)
        self.tabs = QTabWidget()
        self.tabs.addTab(edit, "Declared (edit before converting)")
        self.tabs.addTab(view, "In the artifacts")
        QVBoxLayout(self).addWidget(self.tabs)
        self.contracts: list[tuple[str, Any]] = []

    def declared(self) -> dict[str, Any] | None:
        """The declared contract as a document for ``edgekit.convert(contract=...)``, None when empty; an invalid
        one raises ``EdgekitError`` (the Convert view shows it)."""
        text = self.editor.toPlainText()
        if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            return None
        return edgekit.contract_from_yaml(text, "the contract in the editor").document()

    def check(self) -> bool:
        """Validate the editor's text; the status line says what is wrong."""
        try:
            contract = self.declared()
        except EdgekitError as exc:
            self.status.setText(f"<span style='color:#b00020'>{exc.message}</span>")
            self.status.setToolTip(exc.hint)
            return False
        self.status.setText("No contract declared: it is inferred" if contract is None else
                            f"Valid: {len(contract.get('inputs', []))} input(s), {len(contract.get('outputs', []))} output(s)")
        return True

    def show_build(self, build: Any) -> None:
        """List the contract of every artifact of an ``edgekit.Build``."""
        self.contracts = [(f"{a.format} {a.precision} — {a.path.rsplit('/', 1)[-1]}", a.contract)
                          for a in build.artifacts if a.contract is not None]
        self.artifact.blockSignals(True)
        self.artifact.clear()
        self.artifact.addItems([label for label, _ in self.contracts])
        self.artifact.blockSignals(False)
        self._show_selected(0)
        if self.contracts:
            self.tabs.setCurrentIndex(1)

    def _show_selected(self, index: int) -> None:
        self.entries.setRowCount(0)
        if not 0 <= index < len(self.contracts):
            self.hashes.setText("No artifact with a contract")
            return
        contract = self.contracts[index][1]
        for side, entries in (("input", contract.inputs), ("output", contract.outputs)):
            for entry in entries:
                row = self.entries.rowCount()
                self.entries.insertRow(row)
                shape = "(" + ", ".join("?" if d is None else str(d) for d in entry.shape or ()) + ")"
                origin = "; ".join(f"{k}: {v}" for k, v in entry.origin.items() if v != "source spec") or "source spec"
                cells = (side, entry.name, entry.kind, getattr(entry, "layout", None) or "-", shape, entry.dtype or "-",
                         describe(entry), origin)
                for column, text in enumerate(cells):
                    self.entries.setItem(row, column, item(str(text), tooltip=str(text)))
        self.hashes.setText(f"{contract.schema_} · source sha256 {str(contract.source_sha256)[:16]} · build "
                            f"{str(contract.build_hash)[:16]}")
