"""The data model of a model graph: nodes (ops and graph inputs/outputs), edges, and what the target and
``edgekit debug`` say about each node."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: where a node runs on the target: on its accelerator (or the CPU a CPU target is), on the CPU as a fallback,
#: nowhere (the target cannot run it), or not checked (the target states no op set); ``io`` for graph inputs/outputs
Placement = Literal["accelerator", "fallback", "unsupported", "not_checked", "io"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GraphNode(_Model):
    """One op of the graph (or a graph input / output, ``kind`` says which).

    ``name`` is the op's name as ``edgekit check`` and ``edgekit debug`` name it; ``outputs`` are the tensors
    it writes (how a debug trace's layer keys are matched).
    """

    id: str
    name: str
    op: str
    kind: Literal["op", "input", "output"] = "op"
    outputs: list[str] = Field(default_factory=list)
    shape: tuple[int | None, ...] | None = None
    placement: Placement = "not_checked"
    placement_reason: str = ""
    #: from a divergence report: the error this layer adds (1 - cosine, less what its inputs carried), its cosine
    added_error: float | None = None
    cosine: float | None = None
    trace_index: int | None = Field(None, description="the layer's index in the DivergenceReport's layers")
    culprit: bool = False


class GraphEdge(_Model):
    source: str
    target: str
    tensor: str = ""


class ModelGraph(_Model):
    """The graph of one model file (a source ONNX model or an artifact), annotated for a target."""

    path: str
    format: Literal["onnx", "tflite", "openvino"]
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    target: str | None = None
    #: the format whose placement is shown (a source model is checked per format; an artifact in its own)
    placement_format: str | None = None
    opset_known: bool = False
    debugged: bool = False
    notes: list[str] = Field(default_factory=list)

    def ops(self) -> list[GraphNode]:
        """The op nodes (graph inputs and outputs left out)."""
        return [n for n in self.nodes if n.kind == "op"]

    def placement_counts(self) -> dict[str, int]:
        """How many ops have each placement."""
        counts: dict[str, int] = {}
        for node in self.ops():
            counts[node.placement] = counts.get(node.placement, 0) + 1
        return counts
