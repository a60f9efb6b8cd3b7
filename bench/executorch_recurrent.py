"""ExecuTorch lowering of an unrolled LSTM: time and delegate count against sequence length, three ways.

The model is resemblyzer's GE2E encoder shape in small (``nn.LSTM(40, 64, 3)``, Linear, ReLU, L2 norm, the
last layer's final hidden state), exported at 10, 20 and 40 steps, and lowered:

* ``xnnpack``: ExecuTorch's documented call, ``to_edge_transform_and_lower(XnnpackPartitioner())`` (what
  edgekit did before): every step's split/squeeze runs in the portable kernels and cuts the partition;
* ``edgekit``: the route's partitioner with ``RecurrentSliceViewPass`` (those ops lowered as XNNPACK
  slice/view, one partition for the unrolled layers);
* ``portable``: the recurrent layers' ops all kept out of XNNPACK (the other fix considered).

For each: lowering seconds (``to_edge_transform_and_lower`` + ``to_executorch``), XNNPACK delegates, portable
kernel instructions, the worst cosine against the torch model over 8 random inputs, and the median latency of
20 runs in the ExecuTorch runtime (after 3 warm-up runs; one discarded warm-up lowering first). One run on
this machine; results go to bench/results/executorch_recurrent.json.

    .venv/bin/python bench/executorch_recurrent.py [--steps 10,20,40] [--modes xnnpack,edgekit,portable]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# bench/executorch.py would shadow the executorch package: this folder leaves sys.path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
RESULTS = Path(__file__).parent / "results" / "executorch_recurrent.json"


def encoder():
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(40, 64, 3, batch_first=True)
            self.linear = nn.Linear(64, 32)

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)
            embeds = torch.relu(self.linear(hidden[-1]))
            return embeds / torch.norm(embeds, dim=1, keepdim=True)

    torch.manual_seed(0)
    return Encoder().eval()


def lowering(mode: str) -> tuple[list, list]:
    """(transform passes, partitioners) of ``mode``."""
    from edgekit.converters._executorch_recurrent import RecurrentSliceViewPass, in_recurrent_layer
    from edgekit.converters.torch_executorch import xnnpack_partitioner
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    if mode == "xnnpack":
        return [], [XnnpackPartitioner()]
    if mode == "edgekit":
        return [RecurrentSliceViewPass()], [xnnpack_partitioner()]

    def outside(config):
        class Outside(config):
            def check_constraints(self, node, ep) -> bool:
                return not in_recurrent_layer(node) and super().check_constraints(node, ep)
        return Outside

    return [], [XnnpackPartitioner(configs=[outside(c) for c in ALL_PARTITIONER_CONFIGS])]


def measure(mode: str, steps: int) -> dict:
    import torch
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    model = encoder()
    program = torch.export.export(model, (torch.zeros(1, steps, 40),), strict=False)
    passes, partitioners = lowering(mode)
    started = time.perf_counter()
    buffer = to_edge_transform_and_lower(program, transform_passes=passes, partitioner=partitioners).to_executorch().buffer
    seconds = time.perf_counter() - started
    graph = _plan_instructions(buffer)
    method = Runtime.get().load_program(buffer).load_method("forward")
    inputs = torch.randn(8, 1, steps, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cosine = min(torch.nn.functional.cosine_similarity(method.execute([x])[0], model(x)).item() for x in inputs)
    for x in inputs[:3]:  # warm-up
        method.execute([x])
    latencies = []
    for i in range(20):
        t0 = time.perf_counter()
        method.execute([inputs[i % 8]])
        latencies.append(time.perf_counter() - t0)
    return {"mode": mode, "steps": steps, "lowering_seconds": round(seconds, 1),
            "delegates": sum(kind == "delegate" for kind in graph), "portable_kernels": sum(kind == "kernel" for kind in graph),
            "cosine": round(cosine, 7), "median_ms": round(statistics.median(latencies) * 1e3, 2), "bytes": len(buffer)}


def _plan_instructions(buffer: bytes) -> list[str]:
    """'delegate' or 'kernel' per instruction of the forward plan."""
    import tempfile

    from edgekit.formats.executorch.program import read_program

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.pte"
        path.write_bytes(buffer)
        return [kind for kind, _ in read_program(path).instructions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,20,40")
    parser.add_argument("--modes", default="xnnpack,edgekit,portable")
    args = parser.parse_args(argv)
    from edgekit.quiet import quiet

    with quiet():
        measure(args.modes.split(",")[0], 2)  # warm-up: first imports and the runtime's first load are not counted
    rows = []
    for mode in args.modes.split(","):
        for steps in map(int, args.steps.split(",")):
            with quiet():
                rows.append(measure(mode, steps))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{os.cpu_count()} CPUs",
              "model": "nn.LSTM(40, 64, 3 layers) + Linear(64, 32) + ReLU + L2 norm, batch 1",
              "command": "bench/executorch_recurrent.py " + " ".join(argv or sys.argv[1:]), "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
