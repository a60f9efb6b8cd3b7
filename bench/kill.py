"""Kill real CLI conversions at random points and check what they leave: bench/results/kill.json.

Each trial starts ``edgekit convert`` (a small ONNX model to ONNX + OpenVINO fp32) into a folder that already
holds a build, then at a random (seeded) moment sends SIGKILL to the CLI, SIGKILL to its process group, or
SIGTERM. A trial passes when, within a few seconds, no ``edgekit.worker`` child of that CLI survives, no
staging folder or lock survives (after ``edgekit clean`` for a SIGKILL, at once for a SIGTERM), and the
output folder holds one complete build whose manifest sha256s match the files present, and nothing else.

    python bench/kill.py --trials 100    # writes bench/results/kill.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

KINDS = ("sigkill", "sigkill-group", "sigterm")
WORKER_GONE_SECONDS = 5.0


def small_onnx(path: Path) -> Path:
    """A two-layer MLP (x: 1x64 -> y: 1x10) with fixed weights."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((256, 64)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((10, 256)) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("Gemm", ["r", "w2"], ["y"], transB=1)],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgekit.cli", *args]


def convert_args(model: Path, out: Path) -> list[str]:
    return cli("convert", str(model), "-f", "onnx", "-f", "openvino", "-p", "fp32", "-o", str(out))


def worker_children(pid: int) -> list[int]:
    """Live ``edgekit.worker`` processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and b"edgekit.worker" in cmdline and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) edgekit worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"edgekit.worker" in cmdline


def leftovers(parent: Path, out: Path) -> list[str]:
    """Staging folders and lock files beside ``out``, and staging folders inside it."""
    beside = [p.name for p in parent.iterdir() if ".edgekit-staging-" in p.name or p.name.endswith(".edgekit.lock")]
    inside = [p.name for p in out.iterdir() if ".edgekit-staging-" in p.name] if out.is_dir() else []
    return beside + inside


def consistency(out: Path) -> str | None:
    """None when ``out`` holds exactly one complete build (manifest sha256s match the files), else why not."""
    try:
        manifest = json.loads((out / "edgekit-manifest.json").read_text())
    except (OSError, ValueError) as exc:
        return f"no readable manifest: {exc}"
    listed = {"edgekit-manifest.json"}
    for artifact in manifest["artifacts"]:
        digest = hashlib.sha256()
        for file in artifact["files"]:
            path = Path(file)
            if path.parent != out or not path.is_file():
                return f"{file} is listed but not in {out}"
            digest.update(path.read_bytes())
            listed.add(path.name)
        if digest.hexdigest() != artifact["sha256"]:
            return f"sha256 mismatch for {artifact['path']}"
    for name, sha256 in ((manifest.get("config") or {}).get("run") or {}).get("snippets", {}).items():
        path = out / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            return f"snippet {name} is listed but missing or changed"
        listed.add(Path(name).parts[0])
    extra = sorted({p.name for p in out.iterdir()} - listed)
    return f"files not in the manifest: {extra}" if extra else None


def trial(model: Path, out: Path, kind: str, delay: float) -> dict:
    """One kill trial; returns its record (``passed`` and what failed)."""
    before = (out / "edgekit-manifest.json").read_text()
    process = subprocess.Popen(convert_args(model, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline, workers = time.monotonic() + delay, set()
    while time.monotonic() < deadline and process.poll() is None:
        workers.update(worker_children(process.pid))
        time.sleep(0.02)
    workers.update(worker_children(process.pid))
    if process.poll() is None:
        if kind == "sigkill":
            os.kill(process.pid, signal.SIGKILL)
        elif kind == "sigkill-group":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    gone_by = time.monotonic() + WORKER_GONE_SECONDS
    while any(alive(w) for w in workers) and time.monotonic() < gone_by:
        time.sleep(0.05)
    survivors = [w for w in workers if alive(w)]
    for pid in survivors:  # never leave one behind, even when the trial fails
        os.kill(pid, signal.SIGKILL)
    left_at_once = leftovers(out.parent, out)
    if kind != "sigterm":
        subprocess.run(cli("clean", str(out)), check=True, capture_output=True, timeout=60)
    left = leftovers(out.parent, out)
    problems = []
    if survivors:
        problems.append(f"workers survived: {survivors}")
    if left or (kind == "sigterm" and left_at_once):
        problems.append(f"left behind: {left or left_at_once}")
    if kind == "sigterm" and process.returncode not in (0, 143, -15):
        problems.append(f"exit code {process.returncode}")
    inconsistent = consistency(out)
    if inconsistent:
        problems.append(inconsistent)
    after = (out / "edgekit-manifest.json").read_text() if not inconsistent else ""
    return {"kind": kind, "delay_s": round(delay, 3), "exit_code": process.returncode, "workers_seen": len(workers),
            "outcome": "old" if after == before else "new", "survivors": survivors, "problems": problems,
            "stderr_tail": err.decode(errors="replace").strip().splitlines()[-1:], "passed": not problems}


def run(trials: int, seed: int, folder: Path, on_trial: Callable[[dict], None] | None = None) -> dict:
    """Run ``trials`` kill trials in ``folder``; the summary with every trial's record (also given to ``on_trial``
    after each trial, so a run stopped early still leaves its figures)."""
    rng = random.Random(seed)
    model = small_onnx(folder / "model.onnx")
    out = folder / "out"
    started = time.monotonic()
    subprocess.run(convert_args(model, out), check=True, capture_output=True, timeout=600)
    full = time.monotonic() - started
    records = []
    for index in range(trials):
        kind = KINDS[index % len(KINDS)]
        records.append(trial(model, out, kind, rng.uniform(0.0, full * 1.2)))
        if on_trial is not None:
            on_trial(summarize(records, trials, seed, full))
    return summarize(records, trials, seed, full)


def summarize(records: list[dict], trials: int, seed: int, full: float) -> dict:
    """Counts over the trials run so far (``done`` of ``trials``)."""
    return {
        "trials": len(records), "planned": trials, "seed": seed, "full_build_seconds": round(full, 2),
        "passes": sum(r["passed"] for r in records),
        "survivors": sum(len(r["survivors"]) for r in records),
        "inconsistent_folders": sum(any(not p.startswith(("workers", "left", "exit")) for p in r["problems"]) for r in records),
        "outcomes": {o: sum(r["outcome"] == o for r in records) for o in ("old", "new")},
        "by_kind": {k: {"trials": sum(r["kind"] == k for r in records),
                        "passes": sum(r["passed"] for r in records if r["kind"] == k)} for k in KINDS},
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "kill.json"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="edgekit-kill-"))
    def save(summary: dict) -> None:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")

    try:
        summary = run(args.trials, args.seed, folder, on_trial=save)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    save(summary)
    print(f"{summary['passes']}/{summary['trials']} passed; survivors {summary['survivors']}; "
          f"inconsistent folders {summary['inconsistent_folders']}; outcomes {summary['outcomes']}")


if __name__ == "__main__":
    main()
