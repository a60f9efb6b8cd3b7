"""OpenVINO IR: an ``.xml`` graph with its weights in the ``.bin`` beside it, run with OpenVINO's devices."""
from __future__ import annotations

from pathlib import Path

from edgekit.dependencies import AGENT
from edgekit.formats.base import Accelerator, ArtifactFormat, Requirement, RunnerSpec

_P = "edgekit.formats.openvino."
OPENVINO = Requirement("openvino", "openvino", AGENT)


def sniff(head: bytes, path: Path) -> bool:
    """An IR is XML whose root element is ``<net>`` (after an optional declaration and comments)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith((b"<?xml", b"<net", b"<!--")) and b"<net" in head


def companions(path: Path) -> list[Path]:
    """The weights file: the ``.bin`` of the same name."""
    return [Path(path).with_suffix(".bin")]


DEVICES = (
    Accelerator("CPU", "OpenVINO's CPU plugin (inference precision pinned to f32 by edgekit)", kind="cpu"),
    Accelerator("GPU", "Intel integrated or discrete GPU", "the Intel GPU compute runtime (intel-opencl-icd, Level Zero)",
                kind="gpu"),
    Accelerator("NPU", "Intel NPU (Core Ultra)", "the Intel NPU driver (linux-npu-driver / Windows NPU driver)", kind="npu"),
)

FORMAT = ArtifactFormat(
    name="openvino",
    title="OpenVINO IR",
    suffixes=(".xml", ".bin"),
    sniff=sniff,
    runners=(RunnerSpec("openvino", _P + "openvino:load", requires=(OPENVINO,), accelerators=DEVICES,
                        probe=_P + "openvino:probe", description="OpenVINO Core"),),
    companions="edgekit.formats.openvino:companions",
    list_ops=_P + "ir:list_ops",
    read_inputs=_P + "ir:read_inputs",
    weight_counts=_P + "ir:weight_counts",
    stored_precision=_P + "ir:stored_precision",
    trace=_P + "trace:trace",
    write_contract=_P + "contract:write_contract", read_contract=_P + "contract:read_contract",
)
