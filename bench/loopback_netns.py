"""Run a Python command inside a private network namespace that has only loopback (Linux, as root).

Ray advertises the machine's interface address even when told 127.0.0.1; in a namespace whose only interface is
``lo`` it can use nothing but loopback. The Ray tests and ``bench/tune_ray.py`` run their clusters this way.

    python bench/loopback_netns.py -m pytest tests/tune_ray      # argv after the script goes to python
    python bench/loopback_netns.py --check                       # exit 0 when a namespace can be made here
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import subprocess
import sys

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def enter() -> None:
    """Move this process into a new network namespace and bring its loopback interface up."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNET): {os.strerror(errno)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, bytes(14))
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, bytes(14)))
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        raise OSError(f"the new network namespace has interfaces {names}, expected only lo")


def problem() -> str | None:
    """Why a loopback-only namespace cannot be made on this machine, or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    done = subprocess.run([sys.executable, __file__, "--check"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"cannot make a loopback-only network namespace here: {done.stderr.strip().splitlines()[-1:]}"
    return None


def main(argv: list[str]) -> int:
    try:
        enter()
    except OSError as exc:
        print(f"loopback_netns: {exc} (needs root, or CAP_SYS_ADMIN)", file=sys.stderr)
        return 3
    if argv == ["--check"]:
        return 0
    os.execv(sys.executable, [sys.executable, *argv])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
