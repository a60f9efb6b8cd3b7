"""The agent's options, checked before anything starts, and the Host / Origin allow-lists they imply."""
from __future__ import annotations

import ipaddress
import math
import re
import socket
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgekit.errors import InvalidOptionError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MIN_UPLOAD_BYTES_PER_SECOND = 16 << 10  # after the first --read-timeout seconds, an upload must average this
MAX_WAITING_JOBS = 8
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_OPTIONS = {"port": "--port", "max_upload_bytes": "--max-upload-mb", "read_timeout": "--read-timeout",
            "max_connections": "--max-connections", "max_pending_uploads": "--max-uploads"}


class AgentSettings(BaseModel):
    """Where the agent listens and how much it accepts. ``port`` 0 means any free port (until bound)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    max_upload_bytes: int = Field(default=512 << 20, gt=0)
    read_timeout: float = Field(default=30.0, gt=0, le=3600)
    max_connections: int = Field(default=64, ge=1, le=10_000)
    max_pending_uploads: int = Field(default=2, ge=1, le=64)
    allow_hosts: tuple[str, ...] = ()
    tls: bool = False
    state_dir: Path | None = None

    @classmethod
    def checked(cls, **values) -> AgentSettings:
        """Settings from CLI values, or an :class:`InvalidOptionError` naming the option and what is allowed."""
        upload_mb = values.pop("max_upload_mb", None)
        if upload_mb is not None:
            if not math.isfinite(upload_mb) or upload_mb <= 0:
                raise InvalidOptionError(f"--max-upload-mb {upload_mb:g} is not a size", "give a number of MB above 0, e.g. 512")
            values["max_upload_bytes"] = max(1, int(upload_mb * (1 << 20)))
        values["host"] = check_host(values.get("host", "127.0.0.1"))
        values["allow_hosts"] = tuple(_check_allowed_name(name) for name in values.get("allow_hosts", ()))
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "option"
            hint = ("give a port from 1 to 65535 (0: any free port)" if field == "port"
                    else "see `edgekit agent --help` for the allowed values")
            raise InvalidOptionError(f"{_OPTIONS.get(field, field)} {error.get('input')!r}: {error['msg']}", hint) from None

    @property
    def wildcard(self) -> bool:
        return self.host in ("0.0.0.0", "::")

    @cached_property
    def host_names(self) -> frozenset[str]:
        """Names a request's ``Host`` may carry (with or without this agent's port); computed once (from
        ``host`` and ``allow_hosts``, which a ``model_copy`` with the bound port leaves alone)."""
        names: set[str] = set(self.allow_hosts)
        if self.wildcard:
            names.update(LOOPBACK_NAMES)
            names.update(_interface_addresses())
            hostname = socket.gethostname().lower()
            names.update({hostname, f"{hostname}.local"})
        elif _is_loopback(self.host):
            names.update(LOOPBACK_NAMES)
        else:
            names.add(self.host.lower())
        return frozenset(names)

    def allows_host(self, value: str) -> bool:
        name, port = _split_host(value)
        return name in self.host_names and port in (None, self.port)

    def allows_origin(self, value: str) -> bool:
        try:
            parts = urlsplit(value)
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            return False
        return parts.hostname.rstrip(".").lower() in self.host_names and port == self.port


def check_host(host: str) -> str:
    """An address to listen on: an IPv4/IPv6 address (brackets allowed) or a name that resolves."""
    host = host.strip().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host) or not _NAME.fullmatch(host.lower()):
        raise InvalidOptionError(f"--host {host!r} is not an IP address or host name",
                                 "e.g. --host 127.0.0.1, --host ::1, or --host 0.0.0.0 for every interface")
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidOptionError(f"--host {host!r} does not resolve to an address of this machine",
                                 "give an IP address, e.g. --host 127.0.0.1 or --host ::1") from None
    return host.lower()


def _check_allowed_name(name: str) -> str:
    cleaned = name.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(cleaned))
    except ValueError:
        pass
    if not _NAME.fullmatch(cleaned):
        raise InvalidOptionError(f"--allow-host {name!r} is not a host name or IP address",
                                 "give the name clients use to reach the agent, e.g. --allow-host pi5.local")
    return cleaned


def _split_host(value: str) -> tuple[str, int | None]:
    """``name``, ``name:port``, ``[v6]`` or ``[v6]:port`` → (lower-case name, port or None); junk → ('', None)."""
    value = value.strip()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, _, port_text = value.partition(":")
    if port_text and not port_text.isdigit():
        return "", None
    return name.rstrip(".").lower(), int(port_text) if port_text else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _interface_addresses() -> set[str]:
    import ifaddr  # installed with zeroconf

    found = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            found.add(str(ip.ip) if ip.is_IPv4 else str(ip.ip[0]).partition("%")[0])
    return found
