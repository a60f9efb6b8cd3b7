"""What the desktop app says about a target beyond its findings (no Qt here): what a build for it changes,
what edgekit could not check on this host, and the vendor tools it did not run, with how to get them."""
from __future__ import annotations

from typing import Any

#: profile name -> (the vendor tool that compiles or partitions for the accelerator, how to get and run it)
VENDOR_TOOLS = {
    "coral-edgetpu": ("edgetpu_compiler", "Debian/Ubuntu x86-64: install the edgetpu-compiler package from Coral's apt "
                      "repository (coral.ai/docs/edgetpu/compiler), then run edgetpu_compiler on the int8 .tflite; "
                      "without it the Edge TPU runs nothing of the model"),
    "qualcomm-htp": ("QNN SDK (qnn-context-binary-generator)", "Qualcomm AI Engine Direct SDK from Qualcomm's developer "
                     "site; ONNX Runtime's QNN execution provider compiles the QDQ model on the device otherwise"),
    "intel-npu": ("OpenVINO NPU plugin and driver", "the NPU plugin compiles the IR when it is loaded on a machine with an "
                  "Intel NPU and its driver (intel/linux-npu-driver); this host has none"),
    "nxp-imx8mp-npu": ("VX delegate (libvx_delegate.so)", "part of NXP's i.MX Yocto BSP (eIQ); it compiles the graph for "
                       "the NPU on the board at first run"),
    "nvidia-jetson": ("TensorRT", "JetPack on the Jetson; ONNX Runtime's TensorRT execution provider builds the engine "
                      "on the device at first run"),
    "android-npu": ("NNAPI vendor driver", "on the phone only (deprecated from Android 15); see qualcomm-htp for QNN"),
}


def accelerator_of(profile: Any) -> str:
    """The device the target's runtime runs on, e.g. 'TFLite delegate edgetpu'."""
    runtime = profile.runtime
    fmt = profile.formats[0] if profile.formats else ""
    return {"tflite": f"TFLite delegate {runtime.tflite_delegate}", "onnx": f"ONNX Runtime {runtime.onnx_execution_provider}",
            "openvino": f"OpenVINO {runtime.openvino_device}"}.get(fmt, profile.device_class)


def planned_changes(profile: Any, precision: str, report: Any = None) -> list[str]:
    """What a build for ``profile`` at ``precision`` changes in the model: shapes fixed, I/O quantized, layout."""
    changes = [f"{f.message} — {f.hint}" for f in (report.findings if report else ()) if f.severity == "change"]
    if profile.static_shapes and not changes:
        changes.append(f"{profile.name} needs static shapes: every dynamic dimension is fixed (the batch to 1)")
    if precision == "int8":
        io = profile.quantization.io_dtype
        if io == "float32":
            changes.append("weights and activations become int8; inputs and outputs stay float32 (QUANTIZE/DEQUANTIZE "
                           "at the model's edges)")
        else:
            changes.append(f"inputs and outputs become {io} with a scale and zero point: feed "
                           f"round(x / scale) + zero_point, read (y - zero_point) * scale")
    elif precision == "fp16":
        changes.append("weights are stored as float16")
    if profile.layout != "any":
        changes.append(f"{profile.name} prefers {profile.layout}: an input in the other layout gets Transpose ops")
    return changes


def not_checked(profile: Any, report: Any, fmt: str | None = None) -> list[str]:
    """What edgekit could not check for ``profile``: the op set, the accelerator itself, the vendor compiler."""
    lines = []
    formats = [fmt] if fmt else list(report.stats) if report is not None else []
    for name in formats:
        stats = report.stats.get(name) if report is not None else None
        if stats is None or not stats.opset_known:
            if profile.device_class != "cpu":
                lines.append(f"ops ({name}): not checked — {profile.name} states no op set, so which ops leave "
                             f"the accelerator is unknown (an empty findings table does not mean clean)")
    if report is None:
        lines.append("ops: not checked — the build ran no check of this artifact against the target")
    if profile.device_class != "cpu":
        lines.append(f"the accelerator ({accelerator_of(profile)}) was not used: validation ran on this host's CPU")
    tool = VENDOR_TOOLS.get(profile.name)
    if tool is not None:
        lines.append(f"vendor tool not run: {tool[0]} — {tool[1]}")
    return lines
