"""LAN discovery of agents with zeroconf (mDNS service ``_edgekit._tcp.local.``)."""
from __future__ import annotations

import socket
import time

from edgekit._version import __version__
from edgekit.errors import EdgekitError

SERVICE = "_edgekit._tcp.local."


def _zeroconf():
    try:
        import zeroconf
    except ImportError:
        raise EdgekitError("zeroconf is not installed", "pip install zeroconf (or give the agent's address)") from None
    return zeroconf


class Announcer:
    """Announces an agent listening on ``host:port`` until :meth:`close`."""

    def __init__(self, host: str, port: int) -> None:
        zeroconf = _zeroconf()
        addresses = [host] if host not in ("0.0.0.0", "") else _lan_addresses()
        name = f"edgekit-{socket.gethostname()}-{port}.{SERVICE}"
        self.info = zeroconf.ServiceInfo(SERVICE, name, addresses=[socket.inet_aton(a) for a in addresses], port=port,
                                         properties={"version": __version__}, server=f"{socket.gethostname()}.local.")
        loopback = all(a.startswith("127.") for a in addresses)
        self.zc = zeroconf.Zeroconf(interfaces=addresses if loopback else zeroconf.InterfaceChoice.All)
        self.zc.register_service(self.info)

    def close(self) -> None:
        self.zc.unregister_service(self.info)
        self.zc.close()


def _lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (what an agent on 0.0.0.0 is reachable at)."""
    import ifaddr  # installed with zeroconf

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if ip.is_IPv4 and not str(ip.ip).startswith("127.")]
    return found or ["127.0.0.1"]


def browse(seconds: float = 1.5, interfaces: list[str] | None = None) -> list[str]:
    """Agents announced within ``seconds`` (on every interface, or the given addresses), as ``agent://ADDRESS:PORT``."""
    zeroconf = _zeroconf()
    found: set[str] = set()
    zc = zeroconf.Zeroconf(interfaces=interfaces or zeroconf.InterfaceChoice.All)

    class Listener(zeroconf.ServiceListener):
        def add_service(self, zc, type_, name) -> None:
            info = zc.get_service_info(type_, name, timeout=1000)
            if info is not None:
                for address in info.parsed_addresses():
                    found.add(f"agent://{address}:{info.port}")

        def update_service(self, zc, type_, name) -> None:
            self.add_service(zc, type_, name)

        def remove_service(self, zc, type_, name) -> None:
            return

    browser = zeroconf.ServiceBrowser(zc, SERVICE, Listener())
    try:
        time.sleep(seconds)
    finally:
        browser.cancel()
        zc.close()
    return sorted(found)
