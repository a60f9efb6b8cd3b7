"""Zip archives (``.pt2``, TorchScript) checked as data before anything reads a member: intact, no member outside
the archive, no member that claims to expand far beyond its stored bytes."""
from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from edgekit.errors import ModelFileError, UnsafeModelError

_AGAIN = "copy or export the model again"
_MAX_RATIO = 200  # torch writes its archives uncompressed; deflate rarely passes 20x on real weights


def check_archive(path: Path) -> None:
    """Raise ModelFileError unless ``path`` is an intact zip whose members all stay inside it."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            seen: set[str] = set()
            for info in members:
                _check_member_name(path, info.filename, seen)
                if info.header_offset + info.compress_size > size:
                    raise ModelFileError(
                        f"{path.name} is truncated: member {info.filename} claims more bytes than the file holds",
                        _AGAIN,
                    )
                if info.file_size > _MAX_RATIO * max(info.compress_size, 1):
                    raise UnsafeModelError(
                        f"{path.name} member {info.filename} claims to expand {info.file_size} bytes from "
                        f"{info.compress_size}: a zip bomb, not a model",
                        "do not use this file",
                    )
                if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                    raise ModelFileError(
                        f"{path.name} is corrupt: stored member {info.filename} declares two different sizes",
                        _AGAIN,
                    )
            broken = archive.testzip()
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path.name} is a damaged or truncated zip archive: {exc}", _AGAIN) from None
    except (OSError, EOFError) as exc:
        raise ModelFileError(f"{path.name} cannot be read completely: {exc}", _AGAIN) from None
    if broken is not None:
        raise ModelFileError(f"{path.name} is corrupt: member {broken} fails its checksum", _AGAIN)


def _check_member_name(path: Path, name: str, seen: set[str]) -> None:
    pure = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or pure.is_absolute()
        or ".." in pure.parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise UnsafeModelError(
            f"{path.name} has an archive member with an unsafe path: {name!r}",
            "a model archive never needs paths outside itself; do not use this file",
        )
    if name in seen:
        raise UnsafeModelError(
            f"{path.name} has two archive members named {name!r}",
            "a model archive never repeats a member; do not use this file",
        )
    seen.add(name)
