"""The Devices view's rows: what can run artifacts here and on agents, with its state and why (no Qt here).

The facts come from ``edgekit.devices()`` (every runtime of every format and what each one sees here)
and from agents found with ``edgekit.agent.discovery.browse`` or added by address and token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

State = Literal["available", "missing", "error", "found", "unreachable", "wrong token"]
# edgekit.devices() states -> the view's states
_STATES: dict[str, State] = {"installed": "available", "available": "available", "missing": "missing",
                             "not present": "missing", "error": "error"}


@dataclass(frozen=True)
class DeviceRow:
    """One line of the Devices view; ``device`` is what ``edgekit.profile(device=...)`` takes for it ("" if nothing)."""

    name: str
    kind: str
    runtime: str
    state: State
    detail: str
    device: str


def host_rows(host: dict[str, Any], entries: list[dict[str, Any]]) -> list[DeviceRow]:
    """Rows for the local machine from a ``HostInfo`` and ``edgekit.devices()`` (both as JSON data)."""
    memory = host.get("memory_bytes")
    rows = [DeviceRow(f"This computer ({host.get('hostname', '?')})", "cpu", "host", "available",
                      f"{host.get('cpu', '?')}, {host.get('cpu_count', '?')} cores"
                      + (f", {memory / 2**30:.1f} GB memory" if memory else ""), "local:cpu")]
    package: dict[tuple[str, str], str] = {}
    for entry in entries:
        key = (entry["format"], entry["runtime"])
        if entry["kind"] == "runtime":
            package[key] = f"{entry['name']} {entry.get('version') or ''}".strip()
            continue
        state = _STATES[entry["state"]]
        detail = entry["description"] if state == "available" else f"{entry['state']}: {entry.get('install') or ''}".strip()
        rows.append(DeviceRow(f"{entry['format']} · {entry['runtime']} {entry['name']}", entry["format"],
                              package.get(key, entry["runtime"]), state, detail, entry.get("device", "")))
    return rows


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


def agent_failure_state(message: str) -> State:
    """An agent that answered but refused the token is not "unreachable": it needs the right token."""
    return "wrong token" if "refused the token" in message or "no agent token" in message else "unreachable"
