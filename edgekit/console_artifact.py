"""Rich rendering of ``edgekit inspect ARTIFACT``: format, files, I/O with quantization, manifest entry, contract."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from edgekit.console import console, human_size
from edgekit.specs import shape_text


def print_artifact_info(info: Any) -> None:
    """``info``: an ``edgekit.ArtifactInfo``."""
    console.print(f"[bold]{info.title}[/] artifact {info.path}")
    console.print(f"files: {', '.join(info.files)}  size {human_size(info.size_bytes)}  stored precision "
                  f"{info.stored_precision or '?'}  (I/O read from the {info.specs_from})")
    contract = info.contract
    for title, specs in (("inputs", info.inputs), ("outputs", info.outputs)):
        table = Table(title=title)
        for column in ("name", "shape", "dtype", "layout", "quantization", "contract"):
            table.add_column(column)
        for spec in specs:
            quant = f"scale {spec.scale:.6g}, zero point {spec.zero_point}" if spec.scale is not None else "-"
            item = (contract.input(spec.name) if title == "inputs" else contract.output(spec.name)) if contract else None
            layout = item.layout if item is not None and getattr(item, "layout", None) else spec.layout
            table.add_row(spec.name, shape_text(spec.shape), spec.dtype, layout, quant, _contract_text(item))
        console.print(table)
    if info.manifest_entry is not None:
        entry = info.manifest_entry
        validation = entry.get("validation") or {}
        console.print(f"manifest: {entry.get('format')} {entry.get('precision')} via {entry.get('route')}, validation "
                      f"{validation.get('status')} on {validation.get('samples')} samples, sha256 {str(entry.get('sha256'))[:16]}")
    status = info.contract_status
    color = "green" if status in ("matches the manifest", "no manifest") else "yellow" if status == "none" else "red"
    console.print(f"contract: [{color}]{status}[/]" + (f"  (source {str(contract.source_sha256)[:12]}, build "
                                                        f"{str(contract.build_hash)[:12]})" if contract else ""))


def _contract_text(item: Any) -> str:
    if item is None:
        return "-"
    parts = [item.kind]
    for field in ("color", "range", "mean", "std", "resize", "sample_rate", "frame_size", "score_threshold"):
        value = getattr(item, field, None)
        if value is not None:
            parts.append(f"{field} {list(value) if isinstance(value, tuple) else value}")
    labels = getattr(item, "labels", None)
    if labels:
        parts.append(f"{len(labels)} labels ({', '.join(labels[:3])}{' ...' if len(labels) > 3 else ''})")
    return ", ".join(parts)
