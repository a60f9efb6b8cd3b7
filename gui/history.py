"""The run history of a project (no Qt here): every build and profiling run with its manifest or reports.

Each run is a folder ``<root>/<time>-<kind>-<n>/`` holding ``run.json`` (what, when, the headline numbers) and a
copy of the build's manifest or of each device's profile report, so a run stays readable after its build folder
is replaced. A project ``name.edgekit.json`` keeps its history in ``name.history/`` beside it.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Literal

from edgekit.gui.project import MANIFEST, PROJECT_SUFFIX
from pydantic import BaseModel, ConfigDict

RUN_FILE = "run.json"


class Run(BaseModel):
    """One entry of the history."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["build", "profile"]
    created: str
    model: str = ""
    target: str = ""
    output_dir: str = ""
    devices: list[str] = []
    summary: str = ""
    folder: str = ""  # where the entry lives (set when read)


def history_folder(project: str | Path) -> Path:
    """The history folder of a project file: ``name.edgekit.json`` -> ``name.history``."""
    project = Path(project)
    return project.with_name(project.name.removesuffix(PROJECT_SUFFIX).removesuffix(".json") + ".history")


class History:
    """The runs under ``root``, newest first."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _new_folder(self, kind: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        index = 1
        while (folder := self.root / f"{stamp}-{kind}-{index}").exists():
            index += 1
        folder.mkdir(parents=True)
        return folder

    def _write(self, folder: Path, run: Run) -> Run:
        from edgekit.atomic import atomic_write_text

        atomic_write_text(folder / RUN_FILE, run.model_dump_json(exclude={"folder"}, indent=2) + "\n")
        return run.model_copy(update={"folder": str(folder)})

    def record_build(self, build: Any) -> Run:
        """Keep a build: its manifest copied, with model, target and how many artifacts passed."""
        folder = self._new_folder("build")
        shutil.copyfile(build.manifest_path, folder / MANIFEST)
        passed = sum(a.passed for a in build.artifacts)
        run = Run(kind="build", created=time.strftime("%Y-%m-%d %H:%M:%S"), model=Path(build.source.path or "").name,
                  target=build.target, output_dir=build.output_dir,
                  summary=f"{passed} of {len(build.artifacts) + len(build.failures)} passed")
        return self._write(folder, run)

    def record_profile(self, reports: list[Any]) -> Run:
        """Keep a profiling run: each device's report."""
        folder = self._new_folder("profile")
        for index, report in enumerate(reports):
            report.save_json(folder / f"report-{index}.json")
        results = [r for report in reports for r in report.results]
        fastest = min((r.median_ms for r in results if r.median_ms is not None), default=None)
        run = Run(kind="profile", created=time.strftime("%Y-%m-%d %H:%M:%S"), devices=[r.device for r in reports],
                  model=", ".join(sorted({Path(r.artifact).name for r in results}))[:120],
                  summary=f"{len(results)} measurement(s)" + (f", fastest {fastest:.4f} ms" if fastest is not None else ""))
        return self._write(folder, run)

    def runs(self) -> list[Run]:
        """Every readable run, newest first."""
        found = []
        for entry in sorted(self.root.glob(f"*/{RUN_FILE}"), reverse=True):
            try:
                found.append(Run.model_validate_json(entry.read_text(encoding="utf-8")).model_copy(
                    update={"folder": str(entry.parent)}))
            except (OSError, ValueError):
                continue
        return found

    def copy_to(self, root: str | Path) -> History:
        """The same runs under ``root`` (a project saved under a new name takes its history along)."""
        other = History(root)
        if self.root.is_dir() and self.root.resolve() != other.root.resolve():
            for run in self.runs():
                target = other.root / Path(run.folder).name
                if not target.exists():
                    shutil.copytree(run.folder, target)
        return other


def load_run(run: Run) -> Any:
    """A build run's ``edgekit.Build`` (from its build folder while that still holds it, else from the copy) or
    a profile run's list of ``edgekit.ProfileReport``."""
    import edgekit

    if run.kind == "profile":
        return [edgekit.ProfileReport.load(p) for p in sorted(Path(run.folder).glob("report-*.json"))]
    kept = edgekit.read_manifest(run.folder)
    if Path(run.output_dir, MANIFEST).is_file():
        try:
            if edgekit.read_manifest(run.output_dir).get("created") == kept.get("created"):
                return edgekit.load_build(run.output_dir)
        except edgekit.EdgekitError:
            pass
    return edgekit.load_build(run.folder)


def compare(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """A table of ``runs`` side by side: one row per artifact (format precision · device), one column per run."""
    columns = [f"{r.created} {r.kind} {r.target or ', '.join(r.devices)}" for r in runs]
    cells: dict[str, list[str]] = {}
    for index, run in enumerate(runs):
        for key, text in _cells(run):
            cells.setdefault(key, ["-"] * len(runs))[index] = text
    return columns, [[key, *values] for key, values in cells.items()]


def _cells(run: Run) -> list[tuple[str, str]]:
    loaded = load_run(run)
    if run.kind == "build":
        rows = []
        for a in loaded.artifacts:
            v = a.validation
            parts = [f"{a.size_bytes / 1024:.1f} KB", f"cos {v.cosine:.5f}" if v.cosine is not None else "",
                     f"acc {v.accuracy:.2%}" if v.accuracy is not None else "", a.verdict]
            rows.append((f"{a.format} {a.precision}", " · ".join(p for p in parts if p)))
        return rows
    rows = []
    for report in loaded:
        for r in report.results:
            parts = [f"{r.median_ms:.4f} ms" if r.median_ms is not None else r.status,
                     f"acc {r.accuracy.accuracy:.2%}" if r.accuracy else ""]
            rows.append((f"{r.format} {r.precision or ''} · {r.device}", " · ".join(p for p in parts if p)))
    return rows
