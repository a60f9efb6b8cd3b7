"""What an optimization chain records: the source's metrics, then each step's, for the manifest and the CLI."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class StepRecord(BaseModel):
    """Metrics of the model after one step (``step="source"`` for the model as given), on ``val_data``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    options: dict[str, Any] = {}
    accuracy: float | None = None  # classification: top-1 on val_data
    loss: float | None = None  # regression: mean squared error on val_data
    parameters: int
    nonzero_parameters: int
    sparsity: float
    weight_bytes: int
    seconds: float = 0.0


class OptimizationReport(BaseModel):
    """The chain as run: ``records[0]`` is the source, one record per step after it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    framework: str
    task: Literal["classification", "regression"]
    train_samples: int
    val_samples: int
    max_accuracy_drop: float | None = None
    records: tuple[StepRecord, ...]
    fake_quantized: bool = False

    @property
    def source(self) -> StepRecord:
        return self.records[0]

    @property
    def final(self) -> StepRecord:
        return self.records[-1]

    def table(self) -> str:
        """A plain-text table of the records (the CLI renders its own with rich)."""
        return records_table(self.records)


def records_table(records: tuple[StepRecord, ...] | list[StepRecord]) -> str:
    """Step records as a plain-text table, one row per record."""
    lines = [f"{'step':<34} {'accuracy':>9} {'params':>10} {'sparsity':>9} {'weights':>10}"]
    for r in records:
        metric = f"{r.accuracy:.2%}" if r.accuracy is not None else f"mse {r.loss:.4g}"
        lines.append(f"{r.step:<34} {metric:>9} {r.parameters:>10,} {r.sparsity:>9.1%} {r.weight_bytes / 1024:>8.1f}KB")
    return "\n".join(lines)
