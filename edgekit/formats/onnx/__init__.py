"""ONNX models: run with ONNX Runtime (its execution providers), or with OpenVINO, which reads .onnx too."""
from __future__ import annotations

from pathlib import Path

from edgekit.dependencies import AGENT, CONVERT
from edgekit.formats.base import Accelerator, ArtifactFormat, Requirement, RunnerSpec
from edgekit.formats.openvino import DEVICES as OPENVINO_DEVICES
from edgekit.formats.openvino import OPENVINO

_P = "edgekit.formats.onnx."
ORT = Requirement("onnxruntime", "onnxruntime", AGENT)
# ModelProto field number -> protobuf wire type (0 varint, 2 length-delimited)
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _is_text(head: bytes) -> bool:
    try:
        return all(ch.isprintable() or ch in "\r\n\t" for ch in head.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def sniff(head: bytes, path: Path) -> bool:
    """An ONNX ModelProto: the first protobuf fields of the head are ModelProto fields of the right wire type
    (an ``ir_version`` first, as every exporter writes it, must be a plausible version); plain text is not."""
    if _is_text(head[:64]):
        return False
    pos = fields = 0
    while pos < len(head) and fields < 8:
        tag, pos = _varint(head, pos)
        if tag is None:
            break
        number, wire = tag >> 3, tag & 7
        if _MODEL_FIELDS.get(number) != wire:
            return False
        value, pos = _varint(head, pos)
        if value is None:
            break
        if number == 1 and not 1 <= value <= 64:
            return False
        if wire == 2:
            pos += value
        fields += 1
    return fields > 0


PROVIDERS = (
    Accelerator("CPUExecutionProvider", "ONNX Runtime's CPU kernels", kind="cpu"),
    Accelerator("CUDAExecutionProvider", "NVIDIA GPU through CUDA", "pip install onnxruntime-gpu (and the CUDA runtime)",
                kind="gpu"),
    Accelerator("TensorrtExecutionProvider", "NVIDIA TensorRT", "pip install onnxruntime-gpu with TensorRT installed"),
    Accelerator("DmlExecutionProvider", "DirectML GPU (Windows)", "pip install onnxruntime-directml"),
    Accelerator("CoreMLExecutionProvider", "Apple Neural Engine / GPU through Core ML", "the onnxruntime wheel for macOS"),
    Accelerator("QNNExecutionProvider", "Qualcomm NPU through QNN", "pip install onnxruntime-qnn (Windows on Arm, Android)",
                kind="npu"),
    Accelerator("OpenVINOExecutionProvider", "Intel CPU/GPU/NPU through OpenVINO", "pip install onnxruntime-openvino"),
    Accelerator("NnapiExecutionProvider", "Android NNAPI", "the onnxruntime-android package (Android 8.1-14)"),
)

FORMAT = ArtifactFormat(
    name="onnx",
    title="ONNX",
    suffixes=(".onnx",),
    sniff=sniff,
    runners=(
        RunnerSpec("onnxruntime", _P + "onnxruntime:load", requires=(ORT,), accelerators=PROVIDERS,
                   probe=_P + "onnxruntime:probe", description="ONNX Runtime InferenceSession"),
        RunnerSpec("openvino", "edgekit.formats.openvino.openvino:load", requires=(OPENVINO,),
                   accelerators=OPENVINO_DEVICES, probe="edgekit.formats.openvino.openvino:probe",
                   description="OpenVINO reading the .onnx file directly"),
    ),
    companions=_P + "graph:companions",
    list_ops=_P + "graph:list_ops",
    read_inputs=_P + "graph:read_inputs",
    weight_counts=_P + "graph:weight_counts",
    stored_precision=_P + "graph:stored_precision",
    trace=_P + "trace:trace",
    write_contract=_P + "contract:write_contract", read_contract=_P + "contract:read_contract",
    requires=(Requirement("onnx", "onnx", CONVERT),),
    source_framework="onnx",
)
