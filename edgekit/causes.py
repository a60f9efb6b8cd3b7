"""The lines of a converter's error that name the cause: operators, nodes, layers, tensors.

Converters raise long multi-line messages whose first line is often only where in C++ a check failed
(OpenVINO: ``Check 'false' failed at .../unconverted_ops_report.cpp:151:``); the operators that could
not be converted follow on later lines. :func:`cause_lines` picks those lines out, and
:func:`converter_error` builds a :class:`ConversionError` whose message carries them and whose
``detail`` keeps the converter's full text (the manifest's failure record and ``--verbose`` show it).
"""
from __future__ import annotations

import re

from edgekit.errors import ConversionError, first_line

_OV_SUMMARY = re.compile(r"Conversion is failed for:\s*(.+)")
_OV_NODE = re.compile(r"While validating (?:ONNX )?node '<Node\((\w+)\): ([^>]+)>'")
_OV_OP_BLOCK = re.compile(r"^-- (\S+) with a message:")
_NAMED = re.compile(r"\b(node|nodes|op|ops|operator|operators|layer|layers|tensor|tensors|inputs?|outputs?)\b", re.I)
_NOISE = re.compile(r"^(Check '.*' failed at|FrontEnd API failed with|Traceback|File \"|Summary:|\[ONNX Frontend\])")
MAX_LINES = 8


def cause_lines(text: str, limit: int = MAX_LINES) -> list[str]:
    """The lines of ``text`` that name what failed, most specific first, at most ``limit``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found: list[str] = []
    summary = next((m.group(1).strip() for line in lines if (m := _OV_SUMMARY.search(line))), None)
    if summary:
        found.append(f"operators OpenVINO could not convert: {summary}")
        found += _openvino_nodes(lines)
    else:
        found += [line for line in lines if _NAMED.search(line) and not _NOISE.match(line)]
    unique = list(dict.fromkeys(found))
    return [line[:300] for line in unique[:limit]]


def _openvino_nodes(lines: list[str]) -> list[str]:
    """One line per failed node of OpenVINO's unconverted-ops report: the node and the reason after it."""
    found = []
    for index, line in enumerate(lines):
        match = _OV_NODE.search(line)
        if not match:
            continue
        op, node = match.groups()
        reason = next((later for later in lines[index + 1:index + 4]
                       if not _NOISE.match(later) and not _OV_OP_BLOCK.match(later)), "")
        rest = line[match.end():].lstrip(": ")
        if rest and not rest.startswith("Check"):
            reason = rest
        found.append(f"{op} node {node}: {reason}".rstrip(": "))
    return found


def summary_of(exc: BaseException) -> str:
    """The cause lines of ``exc`` joined on one line, or its first line when none names anything."""
    lines = cause_lines(str(exc))
    return "; ".join(lines) if lines else first_line(exc, 300)


def converter_error(what: str, exc: BaseException, hint: str) -> ConversionError:
    """``what`` failed because of ``exc``: the message names the cause, ``detail`` keeps the full text."""
    return ConversionError(f"{what}: {type(exc).__name__}: {summary_of(exc)}", hint, detail=str(exc))
