"""TFLite / LiteRT flatbuffers: run with ai-edge-litert on hosts, tflite_runtime as a fallback on devices."""
from __future__ import annotations

from pathlib import Path

from edgekit.dependencies import AGENT
from edgekit.formats.base import Accelerator, ArtifactFormat, Requirement, RunnerSpec

_P = "edgekit.formats.tflite."
LITERT = Requirement("ai_edge_litert", "ai-edge-litert", AGENT)


def sniff(head: bytes, path: Path) -> bool:
    """A TFLite flatbuffer carries the file identifier ``TFL3`` at bytes 4-8."""
    return len(head) >= 8 and head[4:8] == b"TFL3"


DELEGATES = (
    Accelerator("xnnpack", "XNNPACK CPU kernels (the default delegate)", kind="cpu"),
    Accelerator("gpu", "GPU delegate (OpenCL / OpenGL / Metal)", "ships with the device's LiteRT build (Android, iOS); "
                "edgekit runs the CPU path on hosts", kind="gpu"),
    Accelerator("qnn", "Qualcomm NPU (HTP) through the QNN delegate", "the QNN delegate library of the Qualcomm AI Engine "
                "Direct SDK on the device", kind="npu"),
    Accelerator("nnapi", "Android NNAPI", "built into Android 8.1-14 (deprecated from Android 15: use a vendor delegate)"),
    Accelerator("edgetpu", "Coral Edge TPU", "libedgetpu from Coral's package repository, and a model compiled with "
                "edgetpu_compiler"),
    Accelerator("vx", "VeriSilicon NPU (NXP i.MX 8M Plus) through the VX delegate", "libvx_delegate.so from NXP's BSP"),
)

FORMAT = ArtifactFormat(
    name="tflite",
    title="TFLite / LiteRT",
    suffixes=(".tflite",),
    sniff=sniff,
    runners=(
        RunnerSpec("litert", _P + "litert:load", requires=(LITERT,), accelerators=DELEGATES, probe=_P + "litert:probe",
                   description="ai-edge-litert Interpreter"),
        RunnerSpec("tflite-runtime", _P + "litert:load_tflite_runtime",
                   requires=(Requirement("tflite_runtime", "tflite-runtime", "pip install tflite-runtime"),),
                   accelerators=DELEGATES[:1], probe=_P + "litert:probe", fallback=True,
                   description="tflite_runtime Interpreter (devices without ai-edge-litert; needs numpy < 2)"),
    ),
    list_ops=_P + "schema:list_ops",
    read_inputs=_P + "schema:read_inputs",
    weight_counts=_P + "weights:weight_counts",
    float_weights=_P + "weights:float_weights",
    stored_precision=_P + "schema:stored_precision",
    trace=_P + "trace:trace",
    write_contract=_P + "contract:write_contract", read_contract=_P + "contract:read_contract",
    requires=(LITERT,),
)
