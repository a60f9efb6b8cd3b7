"""``edgekit clean [FOLDER]``: remove what killed builds left beside and inside an output folder."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.transaction import remove_stale, remove_unlocked_locks


def clean(folder: str | Path) -> list[Path]:
    """Remove staging folders of dead builds and unheld lock files beside ``folder`` (an output folder), and
    staging leftovers inside it and inside its sub-folders; return what was removed. Live builds are left alone."""
    folder = Path(folder).absolute()
    places = [folder.parent, folder, *(p for p in _subfolders(folder))]
    removed: list[Path] = []
    for place in dict.fromkeys(places):
        removed += remove_stale(place)
        removed += remove_unlocked_locks(place)
    return removed


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


@click.command(name="clean")
@click.argument("folder", default="build/edgekit", type=click.Path(path_type=str))
def clean_command(folder: str) -> None:
    """Remove staging folders and lock files left by builds that were killed (beside and inside FOLDER)."""
    removed = clean(folder)
    for path in removed:
        click.echo(f"removed {path}")
    click.echo(f"{len(removed)} leftover(s) removed" if removed else "nothing to clean")
