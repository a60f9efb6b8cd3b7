"""Whether this CPU's int8 dot products saturate: x86-64 without VNNI.

Without VNNI (AVX-512 VNNI, AVX-VNNI or AMX), the int8 convolution and matrix kernels of ONNX Runtime and
OpenVINO multiply uint8 activations by int8 weights with ``vpmaddubsw``, whose 16-bit sums of two products
saturate when both operands use the full 8-bit range. The accuracy lost varies with the model and is not
seen on a CPU with VNNI or on ARM. The remedy both quantizers offer is 7-bit weights (ONNX Runtime's
``reduce_range``, NNCF's ``OverflowFix.ENABLE``).
"""
from __future__ import annotations

import functools
import platform

#: /proc/cpuinfo flags of the instructions that accumulate int8 products in 32 bits
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "avx_vnni_int8"})
_X86 = frozenset({"x86_64", "amd64", "i686", "i386"})


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first processor listed in a ``/proc/cpuinfo`` text."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def saturates(machine: str, cpuinfo: str) -> bool:
    """True for an x86 machine whose flags list no VNNI instruction."""
    return machine.lower() in _X86 and not cpu_flags(cpuinfo) & VNNI_FLAGS


@functools.cache
def host_int8_saturates() -> bool:
    """Whether this host's int8 kernels saturate (False when its CPU flags cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpuinfo = handle.read()
    except OSError:
        return False
    return bool(cpu_flags(cpuinfo)) and saturates(platform.machine(), cpuinfo)
