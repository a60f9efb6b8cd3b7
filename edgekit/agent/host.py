"""One loaded artifact on the agent's device, in its own process (``python -m edgekit.agent.host``).

The agent (:mod:`edgekit.agent.sessions`) sends frames (:mod:`edgekit.agent.wire`) on stdin and reads the
answers on stdout: ``open`` once, then any number of ``run`` (one inference on named arrays), ``measure``
(the profiling protocol's timed loop, :meth:`Runner.measure`, with ``progress`` frames on the way) and
``ops`` (the runner's per-op profile). A model is a program: a native crash ends this process, not the agent,
and the runtime (torch for ExecuTorch) is imported here, never in the agent.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from edgekit.agent.wire import decode_arrays, encode_arrays, read_frame, write_frame
from edgekit.errors import EdgekitError, ProfilingError

MAX_ARRAY_BYTES = 1 << 30


class Host:
    def __init__(self, out: Any) -> None:
        self.out = out
        self.runner: Any = None
        self.parent = os.getppid()

    def handle(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        op = header.get("op")
        if op == "open":
            return self.open(header), b""
        if self.runner is None:
            raise ProfilingError("no model is loaded in this session", "open the session first")
        if op == "run":
            names, data = encode_arrays(self.runner.run(self.feed(header, payload)))
            return {"names": names}, data
        if op == "measure":
            return self.measure(header, payload), b""
        if op == "ops":
            ops = self.runner.op_profile(self.runner.prepare(self.feed(header, payload)), int(header.get("runs", 1)))
            return {"ops": ops, "note": self.runner.op_profile_note}, b""
        raise ProfilingError(f"unknown request {op!r}", "")

    def feed(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        limit = min(int(header.get("limit") or MAX_ARRAY_BYTES), MAX_ARRAY_BYTES)  # the agent's upload limit
        return decode_arrays(header.get("names", []), payload, limit, "inputs")

    def open(self, header: dict[str, Any]) -> dict[str, Any]:
        from edgekit.formats import get_format
        from edgekit.formats.runner import open_runner
        from edgekit.profiling.memory import rss

        fmt = get_format(str(header["format"]))
        spec = fmt.runner(header.get("runtime")) if header.get("runtime") else fmt.default_runner()
        for requirement in spec.requires:  # the runtime is part of the baseline
            try:
                importlib.import_module(requirement.module)
            except ImportError:
                break  # open_runner names what to install
        baseline = rss("VmRSS")
        start = time.perf_counter()
        runner = open_runner(Path(header["path"]), fmt.name, runtime=spec.runtime, device=header.get("device"),
                             threads=header.get("threads"), profile_ops=bool(header.get("profile_ops")))
        self.runner = runner
        return {"runtime": runner.runtime, "accelerator": runner.accelerator, "threads": getattr(runner, "threads", None),
                "executed_precision": runner.executed_precision, "load_ms": (time.perf_counter() - start) * 1000,
                "baseline_rss_bytes": baseline, "inputs": [s.model_dump(mode="json") for s in runner.inputs],
                "outputs": [s.model_dump(mode="json") for s in runner.outputs]}

    def measure(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        from edgekit.profiling.protocol import Settings, pin_cores

        settings = Settings.model_validate(header["settings"])
        affinity = pin_cores(settings.affinity, "the device")
        prepared = self.runner.prepare(self.feed(header, payload))

        def progress(fraction: float, message: str) -> None:
            if os.getppid() != self.parent:  # the agent died: stop measuring for nobody
                os._exit(1)
            write_frame(self.out, {"event": "progress", "stage": "timing", "fraction": fraction, "message": message})

        timing = self.runner.measure(prepared, settings, time.monotonic() + 0.8 * settings.timeout_seconds, progress)
        return {"timing": timing.model_dump(mode="json"), "peak_rss_bytes": self.runner.peak_rss_bytes(),
                "affinity": affinity}


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # runtimes that print to stdout must not break the frames
    stdin = sys.stdin.buffer
    host = Host(out)
    while True:
        try:
            request = read_frame(stdin.read, MAX_ARRAY_BYTES)
        except (ValueError, EdgekitError):
            return
        if request is None:
            return
        try:
            reply, payload = host.handle(*request)
            write_frame(out, {"ok": True, **reply}, payload)
        except EdgekitError as exc:
            write_frame(out, {"ok": False, "kind": type(exc).__name__, "message": exc.message, "hint": exc.hint})
        except Exception as exc:  # a runtime's own exception: an answer, not a dead session
            write_frame(out, {"ok": False, "kind": type(exc).__name__, "hint": "",
                              "message": f"{type(exc).__name__}: {str(exc).strip()[:500]}"})


if __name__ == "__main__":
    main()
