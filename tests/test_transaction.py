"""A build is a transaction: lock, staging beside the output folder, stale cleanup, one atomic publish."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import OutputError
from edgekit.transaction import BuildTransaction, process_token, publish_folder
from tests.kill_harness import kill


def cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(kill.cli(*map(str, args)), capture_output=True, text=True, timeout=300, cwd=cwd)


def fake_build(folder: Path, files: dict[str, bytes]) -> None:
    """A folder shaped like an edgekit build: the files and a manifest that lists them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    artifacts = [{"path": str(folder / n), "files": [str(folder / n)]} for n in files]
    (folder / "edgekit-manifest.json").write_text(json.dumps({"artifacts": artifacts}))


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def hold_lock(out: Path) -> subprocess.Popen:
    """A separate process inside a BuildTransaction on ``out`` until it is killed."""
    code = (f"import sys, time; from edgekit.transaction import BuildTransaction\n"
            f"with BuildTransaction({str(out)!r}):\n    print('ready', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".edgekit" in p.name)


def test_commit_swaps_the_whole_folder_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "out"
    fake_build(out, {"old.onnx": b"old"})
    with BuildTransaction(out) as txn:
        assert txn.root.parent == tmp_path and txn.root.name.startswith(f".out.edgekit-staging-{os.getpid()}-")
        assert (tmp_path / ".out.edgekit.lock").is_file()
        fake_build(txn.build_dir, {"new.onnx": b"new"})
        assert txn.final_path(txn.build_dir / "new.onnx") == str(out / "new.onnx")
        assert sorted(p.name for p in out.iterdir()) == ["edgekit-manifest.json", "old.onnx"]  # untouched until commit
        txn.commit()
    assert sorted(p.name for p in out.iterdir()) == ["edgekit-manifest.json", "new.onnx"]
    assert leftovers(tmp_path) == []


def test_rename_aside_fallback_publishes_the_same_way(tmp_path, monkeypatch):
    monkeypatch.setattr("edgekit.transaction.exchange", lambda a, b: False)
    out = tmp_path / "out"
    fake_build(out, {"old.onnx": b"old"})
    new = tmp_path / "new"
    fake_build(new, {"new.onnx": b"new"})
    publish_folder(new, out, tmp_path / "aside")
    assert (out / "new.onnx").read_bytes() == b"new" and (tmp_path / "aside" / "old.onnx").read_bytes() == b"old"


def test_a_build_that_fails_leaves_the_old_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    fake_build(out, {"old.onnx": b"old"})
    with pytest.raises(RuntimeError), BuildTransaction(out) as txn:
        fake_build(txn.build_dir, {"new.onnx": b"new"})
        raise RuntimeError("a route crashed")
    assert (out / "old.onnx").read_bytes() == b"old" and not (out / "new.onnx").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("content, words", [
    ({"notes.txt": b"mine"}, "is not an edgekit build (no manifest): notes.txt"),
    ({"photo.jpg": b"x", "edgekit-manifest.json": b'{"artifacts": []}'},
     "holds files that are not part of its edgekit build: photo.jpg"),
])
def test_a_folder_with_user_files_is_never_replaced(tmp_path, content, words):
    out = tmp_path / "out"
    out.mkdir()
    for name, data in content.items():
        (out / name).write_bytes(data)
    with pytest.raises(OutputError) as refused:
        BuildTransaction(out).__enter__()
    assert words in refused.value.message and "--out" in refused.value.hint
    assert sorted(p.name for p in out.iterdir()) == sorted(content)
    assert leftovers(tmp_path) == []


def test_an_empty_folder_is_accepted(tmp_path):
    (tmp_path / "out").mkdir()
    with BuildTransaction(tmp_path / "out") as txn:
        fake_build(txn.build_dir, {"a.onnx": b"a"})
        txn.commit()
    assert (tmp_path / "out" / "a.onnx").is_file()


def test_a_second_build_into_the_same_folder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "out"
    holder = hold_lock(out)
    try:
        with pytest.raises(OutputError) as refused:
            BuildTransaction(out).__enter__()
        assert f"another edgekit build is writing {out}: pid {holder.pid} on " in refused.value.message
        done = cli("convert", kill.small_onnx(tmp_path / "m.onnx"), "-f", "onnx", "-p", "fp32", "--out", out)
        assert done.returncode == 2 and f"pid {holder.pid}" in done.stderr and "Traceback" not in done.stderr
        assert not out.exists()
        assert cli("clean", out).stdout.strip() == "nothing to clean" and (tmp_path / ".out.edgekit.lock").is_file()
    finally:
        holder.kill()
        holder.wait()
    with BuildTransaction(out) as txn:  # the dead holder's lock (and its staging folder) are taken over
        assert [p.name for p in tmp_path.iterdir() if "staging" in p.name] == [txn.root.name]


def test_staging_of_dead_builds_and_old_in_folder_staging_are_removed(tmp_path):
    out = tmp_path / "out"
    fake_build(out, {"old.onnx": b"old"})
    dead = tmp_path / f".out.edgekit-staging-{dead_pid()}-{process_token(os.getpid())}-x1"
    reused = tmp_path / f".other.edgekit-staging-{os.getpid()}-1-x2"  # our pid, but another start time: dead
    live = tmp_path / f".other.edgekit-staging-{os.getpid()}-{process_token(os.getpid())}-x3"
    old = out / ".edgekit-staging-ab_12"
    for folder in (dead, reused, live, old):
        (folder / "work").mkdir(parents=True)
    done = cli("clean", out)
    assert done.returncode == 0 and "3 leftover(s) removed" in done.stdout, done.stdout + done.stderr
    assert not dead.exists() and not reused.exists() and not old.exists() and live.exists()
    assert (out / "old.onnx").is_file()
    assert cli("clean", out).stdout.strip() == "nothing to clean"


def test_a_build_removes_dead_staging_beside_its_folder(tmp_path):
    dead = tmp_path / f".out.edgekit-staging-{dead_pid()}-0-x1"
    dead.mkdir()
    with BuildTransaction(tmp_path / "out"):
        assert not dead.exists()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return kill.small_onnx(tmp_path_factory.mktemp("model") / "m.onnx")


@pytest.mark.parametrize("extra, words", [
    (["--calibration", "cal.npy", "-p", "int8"], "cal.npy is not a .npy or .npz file"),
    (["--input-shape", "nope=1,64"], "nope"),
    (["--input-shape", "x=1,a"], "is not a list of integers"),
    (["--input-shape", "x=2,64"], "changes static dimension"),
    (["--format", "tflite", "--format", "nope"], "unknown format 'nope'"),
    (["--tolerance", "cosine=abc"], "--tolerance"),
])
def test_refused_builds_create_no_output_folder(tmp_path, small_model, extra, words):
    (tmp_path / "cal.npy").write_text("not an array\n")
    done = cli("convert", small_model, "-f", "onnx", "--out", tmp_path / "sub" / "out", *extra, cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "sub").exists() and leftovers(tmp_path) == []


def test_a_truncated_model_creates_no_output_folder(tmp_path, small_model):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(small_model.read_bytes()[:5000])
    done = cli("convert", cut, "-f", "onnx", "--out", tmp_path / "out")
    assert done.returncode == 2 and "not a valid ONNX model" in done.stderr, done.stderr
    assert leftovers(tmp_path) == [] and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_rebuild_replaces_the_folder_and_records_final_paths(tmp_path, small_model):
    import edgekit

    out = tmp_path / "out"
    first = edgekit.convert(small_model, formats=["onnx", "openvino"], precision="fp32", output_dir=out, name="v1")
    assert kill.consistency(out) is None and {Path(a.path).name for a in first.artifacts} == {"v1_fp32.onnx", "v1_fp32.xml"}
    second = edgekit.convert(small_model, formats="onnx", precision="fp32", output_dir=out, name="v2")
    assert second.output_dir == str(out) and second.manifest_path == str(out / "edgekit-manifest.json")
    assert [Path(f).parent for a in second.artifacts for f in a.files] == [out]
    assert sorted(p.name for p in out.iterdir()) == ["edgekit-manifest.json", "snippets", "v2_fp32.onnx"]
    assert kill.consistency(out) is None and leftovers(tmp_path) == []
    np.testing.assert_equal(len(second.artifacts), 1)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_the_cli_like_ctrl_c(tmp_path, small_model, signum, code):
    out = tmp_path / "out"
    process = subprocess.Popen(kill.convert_args(small_model, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline, workers = time.monotonic() + 60, []
    while not workers and time.monotonic() < deadline and process.poll() is None:
        workers = kill.worker_children(process.pid)
        time.sleep(0.02)
    assert workers, "no worker started"
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code
    assert err.strip().splitlines()[-1] == f"stopped by {signal.Signals(signum).name}: nothing half-written was kept"
    assert not any(kill.alive(w) for w in workers) and leftovers(tmp_path) == [] and not out.exists()
