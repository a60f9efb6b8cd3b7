"""A build as a transaction: a lock on the output folder, a private staging folder beside it, one atomic publish.

For an output folder ``<parent>/<name>`` a build

1. takes ``<parent>/.<name>.edgekit.lock`` (``flock``; a second build into the same folder is refused with the
   holder's pid, host and start time; the lock of a dead process is taken over),
2. removes staging folders whose owner is dead (and in-folder ``.edgekit-staging-*`` folders of older versions),
3. writes the whole new build (artifacts, then the manifest) into
   ``<parent>/.<name>.edgekit-staging-<pid>-<start>-<random>/build``,
4. publishes it by one atomic swap with the output folder (``renameat2(RENAME_EXCHANGE)`` on Linux, a
   rename-aside elsewhere), so the folder holds the old build or the new one, never a mix.

The staging folder is removed on every exit path this process lives through; a SIGKILL leaves it to the
next build or ``edgekit clean``, which can tell its owner is dead from the pid and process start time in its name.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from edgekit.atomic import fsync_dir
from edgekit.errors import OutputError
from edgekit.lifetime import deferred_signals

MANIFEST_NAME = "edgekit-manifest.json"  # the same name as edgekit.manifest (not imported: it pulls in specs)
STAGING_MARK = ".edgekit-staging-"
BUILD_FOLDERS = ("snippets", "logs")  # folders a build writes beside its artifacts: contract snippets, failed routes' logs
LOCK_SUFFIX = ".edgekit.lock"
#: ``.<name>.edgekit-staging-<pid>-<start token>-<random>``
_STAGING = re.compile(r"^\.(?P<name>.*)\.edgekit-staging-(?P<pid>\d+)-(?P<token>\d+)-[^-]+$")
_OLD_STAGING = re.compile(r"^\.edgekit-staging-[A-Za-z0-9_]+$")  # in-folder staging of edgekit <= 0.x
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


# ---------------------------------------------------------------- process identity


def process_token(pid: int) -> str:
    """A number that tells this process from a later one reusing its pid: its start time (clock ticks since boot
    on Linux), or "0" where the platform does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), counted after the command name


def owner_alive(pid: int, token: str) -> bool:
    """Whether the process ``pid`` that started at ``token`` still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return token == "0" or process_token(pid) in (token, "0")


# ---------------------------------------------------------------- stale staging


def stale_entries(folder: Path) -> list[Path]:
    """Staging folders in ``folder`` whose owner is dead, and in-folder leftovers of older edgekit versions."""
    found: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in Path(folder).iterdir():
            match = _STAGING.match(entry.name)
            if match and not owner_alive(int(match["pid"]), match["token"]):
                found.append(entry)
            elif _OLD_STAGING.match(entry.name) and entry.is_dir():
                found.append(entry)
    return found


def remove_stale(folder: Path) -> list[Path]:
    """Remove :func:`stale_entries` of ``folder``; return what was removed."""
    removed = []
    for entry in stale_entries(folder):
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


# ---------------------------------------------------------------- the lock


class BuildLock:
    """An exclusive lock on an output folder, held in ``<parent>/.<name>.edgekit.lock``."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.target = path, target
        self.fd: int | None = None

    def acquire(self) -> BuildLock:
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputError(
                    f"another edgekit build is writing {self.target}: pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')}, started {holder.get('started', '?')}",
                    "wait for it to finish (or stop it), or build into another --out folder",
                )
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file between our open and our lock: take the new one
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    "token": process_token(os.getpid())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks the first byte
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def remove_unlocked_locks(folder: Path) -> list[Path]:
    """Remove lock files in ``folder`` that no live process holds."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in Path(folder).glob(f".*{LOCK_SUFFIX}"):
            with contextlib.suppress(OSError, OutputError):  # OutputError: a live build holds it
                lock = BuildLock(entry, entry).acquire()
                lock.release()
                removed.append(entry)
    return removed


# ---------------------------------------------------------------- the output folder


def check_replaceable(out: Path) -> None:
    """Refuse an output folder that holds anything but an edgekit build (an empty folder is fine)."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise OutputError(f"the output path {out} is a {'symbolic link' if out.is_symlink() else 'file'}, not a folder",
                          "give a real folder with --out / output_dir= (a build replaces it as a whole)")
    names = {entry.name for entry in out.iterdir() if not _OLD_STAGING.match(entry.name)}
    if not names:
        return
    manifest = out / MANIFEST_NAME
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
        listed = {MANIFEST_NAME, *BUILD_FOLDERS} | {Path(f).name for a in document.get("artifacts", []) for f in a.get("files", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        listed = set()
    foreign = sorted(names - listed) if listed else sorted(names)
    if foreign:
        what = "holds files that are not part of its edgekit build" if listed else "is not an edgekit build (no manifest)"
        raise OutputError(
            f"the output folder {out} {what}: {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}",
            "a build replaces its whole output folder: give an empty or new folder with --out, or move those files away",
        )


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system or kernel cannot swap
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def publish_folder(new: Path, out: Path, aside: Path) -> None:
    """Make the complete folder ``new`` the folder ``out`` in one step; the previous ``out`` ends up at ``aside``."""
    fsync_dir(new)
    if not out.exists():
        os.rename(new, out)
    elif exchange(new, out):
        os.rename(new, aside)
    else:  # rename-aside: for a moment ``out`` is missing, but it never holds a mix
        os.rename(out, aside)
        os.rename(new, out)
    fsync_dir(out.parent)


# ---------------------------------------------------------------- the transaction


class BuildTransaction:
    """``with BuildTransaction(out) as txn:`` write into ``txn.build_dir``, work in ``txn.work_dir``, then
    ``txn.commit()``; leaving the block without a commit leaves ``out`` as it was."""

    def __init__(self, output_dir: str | Path) -> None:
        self.out = Path(os.path.abspath(output_dir))
        self.root = self.build_dir = self.work_dir = Path()
        self.lock: BuildLock | None = None
        self.committed = False
        self.created: Path | None = None  # the outermost parent folder this build had to create

    def __enter__(self) -> BuildTransaction:
        try:
            with deferred_signals():  # a signal in here would leave a lock or a staging folder behind
                self._begin()
        except BaseException:  # including a signal delivered as the block ends, before ``with`` owns the cleanup
            with deferred_signals():
                self._end()
            raise
        return self

    def _begin(self) -> None:
        parent, name = self.out.parent, self.out.name
        missing = [p for p in (parent, *parent.parents) if not p.exists()]
        self.created = missing[-1] if missing else None
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.lock = BuildLock(parent / f".{name}{LOCK_SUFFIX}", self.out).acquire()
        except OSError as exc:
            raise OutputError(
                f"cannot write to the output folder {self.out}: {exc.strerror or exc}",
                "choose a folder you can write to with --out / output_dir=",
            ) from None
        try:
            remove_stale(parent)
            remove_stale(self.out)
            check_replaceable(self.out)
            prefix = f".{name}{STAGING_MARK}{os.getpid()}-{process_token(os.getpid())}-"
            self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            self.build_dir, self.work_dir = self.root / "build", self.root / "work"
            self.build_dir.mkdir()
            self.work_dir.mkdir()
        except BaseException:
            self._end()
            raise

    def final_path(self, path: str | Path) -> str:
        """Where a file staged under ``build_dir`` lives once the build is published."""
        return str(self.out / Path(path).relative_to(self.build_dir))

    def relocate(self, artifact: Any) -> Any:
        """An artifact (``edgekit.specs.Artifact``) staged under ``build_dir`` with its final paths."""
        return artifact.model_copy(update={"path": self.final_path(artifact.path),
                                           "files": tuple(map(self.final_path, artifact.files))})

    def published(self, build: Any) -> Any:
        """The ``edgekit.specs.Build`` written under ``build_dir``, as it is once published."""
        return build.model_copy(update={"output_dir": str(self.out), "manifest_path": str(self.out / MANIFEST_NAME)})

    def commit(self) -> None:
        """Publish ``build_dir`` as the output folder (atomically) and drop the previous build."""
        with deferred_signals():
            check_replaceable(self.out)
            publish_folder(self.build_dir, self.out, self.root / "previous")
            self.committed = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with deferred_signals():
            self._end()

    def _end(self) -> None:
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.created is not None and not self.committed:  # a refused build leaves no empty parent folders
            for folder in (self.out.parent, *self.out.parent.parents):
                with contextlib.suppress(OSError):
                    folder.rmdir()
                if folder == self.created:
                    break
