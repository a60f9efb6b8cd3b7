"""What can run models here: the host, every runtime of every format and the accelerators each one sees.

Built from the ``FORMATS`` table: each runner declares its packages (with their install line) and its
delegates / execution providers / devices (with how to get them); ``probe`` asks an installed runtime
which of them this host really has.
"""
from __future__ import annotations

import os
import platform
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict

from edgekit.errors import first_line
from edgekit.formats import all_formats
from edgekit.formats.base import ArtifactFormat, RunnerSpec, resolve
from edgekit.manifest import installed_versions
from edgekit.profiling.report import HostInfo

State = Literal["installed", "available", "missing", "not present", "error"]


class DeviceEntry(BaseModel):
    """One runtime of a format (``kind="runtime"``) or one accelerator of that runtime, and its state here.

    ``state``: a runtime is ``installed`` or ``missing``; an accelerator is ``available``, ``missing`` (its
    runtime is not installed), ``not present`` (the runtime is installed but this host has no such device)
    or ``error`` (the runtime failed to answer). ``install`` says how to get what is not here; ``device`` is
    what ``edgekit.profile(device=...)`` takes for it ("" when none)."""

    model_config = ConfigDict(frozen=True)

    format: str
    runtime: str
    kind: Literal["runtime", "accelerator"]
    name: str
    state: State
    description: str
    version: str | None = None
    install: str = ""
    device: str = ""


def runtime_packages() -> tuple[str, ...]:
    """Every runtime distribution any format's runners declare, in table order."""
    names = [r.distribution for fmt in all_formats() for spec in fmt.runners for r in spec.requires]
    return tuple(dict.fromkeys(names))


def _probe(spec: RunnerSpec, cache: dict[str, list[str] | str]) -> list[str] | str:
    """The accelerator names the runtime sees, or the first line of its error."""
    if spec.probe is None:
        return [a.name for a in spec.accelerators]
    if spec.probe not in cache:
        try:
            cache[spec.probe] = list(resolve(spec.probe)())
        except Exception as exc:  # a broken install raises whatever its native layer raises
            cache[spec.probe] = f"broken install: {first_line(exc, 200)}"
    return cache[spec.probe]


def _runner_entries(fmt: ArtifactFormat, spec: RunnerSpec, versions: dict[str, str],
                    cache: dict[str, list[str] | str]) -> list[DeviceEntry]:
    absent = spec.missing()
    package = spec.requires[0].distribution if spec.requires else spec.runtime
    base = {"format": fmt.name, "runtime": spec.runtime}
    default = spec is fmt.runners[0]
    entries = [DeviceEntry(**base, kind="runtime", name=package, state="missing" if absent else "installed",
                           description=spec.description, version=versions.get(package),
                           install=absent[0].install if absent else "")]
    seen = [] if absent else _probe(spec, cache)
    declared = {a.name for a in spec.accelerators}
    for accelerator in spec.accelerators:
        device = f"local:{accelerator.kind}" if accelerator.kind and default else ""
        if absent:
            state, install = "missing", absent[0].install
        elif isinstance(seen, str):
            state, install = "error", seen
        elif any(name == accelerator.name or name.startswith(accelerator.name + ".") for name in seen):
            state, install = "available", ""
        else:
            state, install = "not present", accelerator.install or "no such device on this host"
        entries.append(DeviceEntry(**base, kind="accelerator", name=accelerator.name, state=state,
                                   description=accelerator.description, install=install, device=device))
    for name in seen if isinstance(seen, list) else []:  # what the runtime sees beyond the table (GPU.1, Azure EP ...)
        if name not in declared and name.split(".")[0] not in declared:
            entries.append(DeviceEntry(**base, kind="accelerator", name=name, state="available",
                                       description=f"reported by {package}"))
    return entries


def devices() -> list["DeviceEntry"]:
    """Every runtime of every format and each of its accelerators, with its state on this host."""
    versions = installed_versions(runtime_packages())
    cache: dict[str, list[str] | str] = {}
    return [entry for fmt in all_formats() for spec in fmt.runners for entry in _runner_entries(fmt, spec, versions, cache)]


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


def accelerators(entries: list[DeviceEntry]) -> dict[str, list[str]]:
    """Per format, what its installed default-or-fallback runtimes see (the ``HostInfo.accelerators`` map)."""
    found: dict[str, list[str]] = {}
    for fmt in all_formats():
        runtime = fmt.default_runner().runtime
        names = [e.name if e.state != "error" else e.install for e in entries
                 if e.format == fmt.name and e.runtime == runtime and e.kind == "accelerator" and e.state in ("available", "error")]
        if names:
            found[fmt.name] = list(dict.fromkeys(names))
    return found


def host_info(probe: bool = True, entries: list[DeviceEntry] | None = None) -> HostInfo:
    """This machine; ``probe`` asks each runtime which accelerators it sees (imports the runtimes), unless the
    ``entries`` of :func:`devices` are given."""
    found = accelerators(entries) if entries is not None else accelerators(devices()) if probe else {}
    return HostInfo(
        hostname=socket.gethostname(), system=f"{platform.system()} {platform.release()}", machine=platform.machine(),
        cpu=_cpu_name(), cpu_count=os.cpu_count() or 1, memory_bytes=_memory(), python=platform.python_version(),
        runtimes=installed_versions(runtime_packages()), accelerators=found,
    )
