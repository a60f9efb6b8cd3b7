"""ExecuTorch programs (.pte): run with the ExecuTorch runtime (``executorch.runtime``), XNNPACK on CPU here.

A ``.pte`` is a flatbuffer with the file identifier ``ET12`` at bytes 4-8 (``program.fbs`` of ExecuTorch).
Ops are read from the program's execution plan: ``DelegateCall`` instructions run in a backend (XNNPACK),
``KernelCall`` instructions in the portable / optimized CPU kernels linked into the runtime.
"""
from __future__ import annotations

from pathlib import Path

from edgekit.dependencies import install_line
from edgekit.formats.base import Accelerator, ArtifactFormat, Requirement, RunnerSpec

_P = "edgekit.formats.executorch."
EXECUTORCH = Requirement("executorch", "executorch", install_line("executorch"))
MAGIC = b"ET12"


def sniff(head: bytes, path: Path) -> bool:
    """An ExecuTorch program carries the flatbuffer file identifier ``ET12`` at bytes 4-8."""
    return len(head) >= 8 and head[4:8] == MAGIC


BACKENDS = (
    Accelerator("XnnpackBackend", "XNNPACK CPU kernels (arm64, x86-64): the backend edgekit lowers to and runs here",
                kind="cpu"),
    Accelerator("CoreMLBackend", "Apple Neural Engine / GPU / CPU through Core ML (iOS, macOS)",
                "an executorch build with the Core ML backend on macOS, and a program lowered with the CoreML "
                "partitioner; this Linux host cannot run or test it"),
    Accelerator("MPSBackend", "Apple GPU through Metal Performance Shaders (iOS, macOS)",
                "an executorch build with the MPS backend on macOS; this Linux host cannot run or test it",
                kind="gpu"),
    Accelerator("VulkanBackend", "Android / Linux GPU through Vulkan",
                "an executorch build with the Vulkan backend and a Vulkan driver; not tested on this host"),
    Accelerator("QnnBackend", "Qualcomm Hexagon NPU through the QNN SDK (Snapdragon phones)",
                "the Qualcomm AI Engine Direct SDK and a program lowered with the QNN partitioner; this host has "
                "no Hexagon NPU", kind="npu"),
)

FORMAT = ArtifactFormat(
    name="executorch",
    title="ExecuTorch (.pte)",
    suffixes=(".pte",),
    sniff=sniff,
    runners=(
        RunnerSpec("executorch", _P + "runtime:load", requires=(EXECUTORCH,), accelerators=BACKENDS,
                   probe=_P + "runtime:probe", description="ExecuTorch runtime (executorch.runtime), method forward"),
    ),
    companions=_P + "contract:companions",
    list_ops=_P + "program:list_ops",
    read_inputs=_P + "program:read_inputs",
    weight_counts=_P + "program:weight_counts",
    stored_precision=_P + "program:stored_precision",
    trace=None,
    write_contract=_P + "contract:write_contract", read_contract=_P + "contract:read_contract",
    requires=(EXECUTORCH,),
    notes=("edgekit debug (intermediate outputs) is not available for executorch: the delegated XNNPACK "
           "subgraphs expose no intermediate tensors to the Python runtime, and the ETDump debug outputs need a "
           "runtime built with its event tracer (the pip wheels are built without it)",),
)
