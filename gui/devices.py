"""The Devices view's rows: what can run artifacts here and on agents, with its state and why (no Qt here).

The facts come from ``edgekit.profiling.devices.host_info`` (installed runtimes and what each one sees)
and from agents found with ``edgekit.agent.discovery.browse`` or added by address and token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

State = Literal["available", "missing", "error", "found", "unreachable"]
RUNTIME_OF = {"tflite": ("ai-edge-litert", "tflite-runtime"), "onnx": ("onnxruntime",), "openvino": ("openvino",)}
# What edgekit.profile asks each runtime for on local:cpu / local:gpu / local:npu (edgekit.profiling.api).
KNOWN = {
    "tflite": (("xnnpack", "cpu"), ("gpu", "gpu"), ("npu", "npu")),
    "onnx": (("CPUExecutionProvider", "cpu"), ("CUDAExecutionProvider", "gpu"), ("QNNExecutionProvider", "npu")),
    "openvino": (("CPU", "cpu"), ("GPU", "gpu"), ("NPU", "npu")),
}
FORMAT_NAMES = {"tflite": "TFLite", "onnx": "ONNX Runtime", "openvino": "OpenVINO"}


@dataclass(frozen=True)
class DeviceRow:
    """One line of the Devices view; ``device`` is what ``edgekit.profile(device=...)`` takes for it ("" if nothing)."""

    name: str
    kind: str
    runtime: str
    state: State
    detail: str
    device: str


def host_rows(host: dict[str, Any]) -> list[DeviceRow]:
    """Rows for the local machine from a ``HostInfo`` (as JSON data)."""
    runtimes: dict[str, str] = host.get("runtimes", {})
    accelerators: dict[str, list[str]] = host.get("accelerators", {})
    memory = host.get("memory_bytes")
    rows = [DeviceRow(f"This computer ({host.get('hostname', '?')})", "cpu", "host", "available",
                      f"{host.get('cpu', '?')}, {host.get('cpu_count', '?')} cores"
                      + (f", {memory / 2**30:.1f} GB memory" if memory else ""), "local:cpu")]
    for fmt, known in KNOWN.items():
        package = next((p for p in RUNTIME_OF[fmt] if p in runtimes), None)
        seen = accelerators.get(fmt, [])
        broken = [s for s in seen if s.startswith("broken install")]
        runtime = f"{package} {runtimes[package]}" if package else RUNTIME_OF[fmt][0]
        names = [name for name, _ in known] + [s for s in seen if s not in dict(known) and not s.startswith("broken")]
        for name in names:
            local = dict(known).get(name)  # other providers (e.g. Azure) are not a local:* device
            device = f"local:{local}" if local else ""
            label = f"{FORMAT_NAMES[fmt]} {name}"
            if package is None:
                rows.append(DeviceRow(label, fmt, runtime, "missing", f"{RUNTIME_OF[fmt][0]} is not installed", device))
            elif broken:
                rows.append(DeviceRow(label, fmt, runtime, "error", broken[0], device))
            elif name in seen:
                rows.append(DeviceRow(label, fmt, runtime, "available", _available_detail(fmt, name), device))
            else:
                rows.append(DeviceRow(label, fmt, runtime, "missing", _missing_detail(fmt, name), device))
    return rows


def _available_detail(fmt: str, name: str) -> str:
    return {"tflite": "delegate ready", "onnx": "execution provider in this build",
            "openvino": "device found by OpenVINO"}[fmt]


def _missing_detail(fmt: str, name: str) -> str:
    if fmt == "tflite":
        return f"no {name.upper()} delegate on this host (delegates ship with the device's LiteRT build)"
    if fmt == "onnx":
        return f"{name} is not in this onnxruntime build (install the onnxruntime package built for it)"
    return f"OpenVINO found no {name} here (driver missing, or no such hardware)"


def agent_row(address: str, state: State, detail: str) -> DeviceRow:
    """A row for an agent at ``address`` (``agent://HOST:PORT`` or ``HOST:PORT``)."""
    device = address if address.startswith("agent://") else f"agent://{address}"
    return DeviceRow(f"Agent {device.removeprefix('agent://')}", "agent", "edgekit agent", state, detail, device)


def agent_detail(host: dict[str, Any] | None) -> str:
    """What an agent's /info says of its machine, in a line."""
    if not host:
        return "answered, but sent no host information"
    runtimes = ", ".join(f"{k} {v}" for k, v in host.get("runtimes", {}).items()) or "no runtimes"
    return f"{host.get('hostname', '?')}: {host.get('cpu', '?')}, {host.get('cpu_count', '?')} cores; {runtimes}"


def profile_devices(rows: list[DeviceRow]) -> list[str]:
    """The devices a profiling run can use: local:cpu, local:gpu/npu when some runtime has one, usable agents."""
    usable = []
    for row in rows:
        if row.state == "available" and row.device and row.device not in usable:
            usable.append(row.device)
    return usable
