"""What can run models here: the host, installed runtimes and the accelerators each one sees."""
from __future__ import annotations

import os
import platform
import socket

from edgekit.errors import first_line
from edgekit.manifest import installed_versions
from edgekit.profiling.report import HostInfo

RUNTIME_PACKAGES = ("ai-edge-litert", "tflite-runtime", "onnxruntime", "openvino")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def runtimes() -> dict[str, str]:
    """Installed runtime packages and their versions (from metadata, nothing imported)."""
    return installed_versions(RUNTIME_PACKAGES)


def accelerators(installed: dict[str, str]) -> dict[str, list[str]]:
    """Per format, what it can run on: TFLite delegates, ONNX Runtime providers, OpenVINO devices."""
    found: dict[str, list[str]] = {}
    if "ai-edge-litert" in installed or "tflite-runtime" in installed:
        found["tflite"] = ["xnnpack"]
    if "onnxruntime" in installed:
        try:
            import onnxruntime

            found["onnx"] = list(onnxruntime.get_available_providers())
        except ImportError as exc:
            found["onnx"] = [f"broken install: {exc}"]
    if "openvino" in installed:
        try:
            import openvino

            found["openvino"] = list(openvino.Core().available_devices)
        except (ImportError, RuntimeError) as exc:
            found["openvino"] = [f"broken install: {first_line(exc)}"]
    return found


def host_info(probe: bool = True) -> HostInfo:
    """This machine; ``probe`` asks each runtime which accelerators it sees (imports the runtimes)."""
    installed = runtimes()
    return HostInfo(
        hostname=socket.gethostname(), system=f"{platform.system()} {platform.release()}", machine=platform.machine(),
        cpu=_cpu_name(), cpu_count=os.cpu_count() or 1, memory_bytes=_memory(), python=platform.python_version(),
        runtimes=installed, accelerators=accelerators(installed) if probe else {},
    )
