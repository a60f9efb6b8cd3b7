"""LAN discovery of agents with zeroconf (mDNS service ``_edgekit._tcp.local.``)."""
from __future__ import annotations

import ipaddress
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
    """Announces an agent listening on ``host:port`` until :meth:`close`; a TLS agent says ``tls=1`` and its
    certificate's ``fingerprint`` (a hint for the user to compare, not a trust anchor: mDNS is unauthenticated)."""

    def __init__(self, host: str, port: int, fingerprint: str | None = None) -> None:
        zeroconf = _zeroconf()
        addresses = _addresses(host) if host not in ("0.0.0.0", "::", "") else _lan_addresses()
        name = f"edgekit-{socket.gethostname()}-{port}.{SERVICE}"
        properties = {"version": __version__, "tls": "1" if fingerprint else "0"}
        if fingerprint:
            properties["fingerprint"] = fingerprint.replace(":", "").lower()
        self.info = zeroconf.ServiceInfo(SERVICE, name, addresses=[ipaddress.ip_address(a).packed for a in addresses],
                                         port=port, properties=properties, server=f"{socket.gethostname()}.local.")
        loopback = all(ipaddress.ip_address(a).is_loopback for a in addresses)
        self.zc = zeroconf.Zeroconf(interfaces=addresses if loopback else zeroconf.InterfaceChoice.All)
        self.zc.register_service(self.info)

    def close(self) -> None:
        self.zc.unregister_service(self.info)
        self.zc.close()


def _addresses(host: str) -> list[str]:
    """``host`` as IP addresses (a name such as ``localhost`` resolved)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})


def _lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (what an agent on 0.0.0.0 is reachable at)."""
    import ifaddr  # installed with zeroconf

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if ip.is_IPv4 and not str(ip.ip).startswith("127.")]
    return found or ["127.0.0.1"]


def browse(seconds: float = 1.5, interfaces: list[str] | None = None) -> list[str]:
    """Agents announced within ``seconds`` (on every interface, or the given addresses), as ``agent://ADDRESS:PORT``
    (``https://ADDRESS:PORT`` for an agent that serves TLS)."""
    return sorted(agent["url"] for agent in browse_details(seconds, interfaces))


def browse_details(seconds: float = 1.5, interfaces: list[str] | None = None) -> list[dict[str, str]]:
    """Like :func:`browse`, with each agent's announced ``version``, ``tls`` and ``fingerprint`` (hex, TLS only)."""
    zeroconf = _zeroconf()
    found: dict[str, dict[str, str]] = {}
    zc = zeroconf.Zeroconf(interfaces=interfaces or zeroconf.InterfaceChoice.All)

    class Listener(zeroconf.ServiceListener):
        def add_service(self, zc, type_, name) -> None:
            info = zc.get_service_info(type_, name, timeout=1000)
            if info is None:
                return
            properties = {k.decode(): (v or b"").decode(errors="replace") for k, v in info.properties.items()}
            tls = properties.get("tls") == "1"
            for address in info.parsed_addresses():
                shown = f"[{address}]" if ":" in address else address
                url = f"{'https' if tls else 'agent'}://{shown}:{info.port}"
                found[url] = {"url": url, "version": properties.get("version", ""), "tls": "1" if tls else "0",
                              "fingerprint": properties.get("fingerprint", "") if tls else ""}

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
    return [found[url] for url in sorted(found)]
