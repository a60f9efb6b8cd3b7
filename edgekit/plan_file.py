"""A build written down: the model file, its data files and every ``convert()`` option, with content hashes.

``edgekit convert --plan PLAN.json`` rebuilds it; the hashes make sure the files are still the ones it was
planned with (a changed model or data file is refused, never silently rebuilt into something else). Each tune
trial's build is one plan file, and its content hash (``PlanFile.key``) names the trial's cached build.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from edgekit._version import __version__
from edgekit.atomic import atomic_write_text
from edgekit.errors import InvalidOptionError
from edgekit.plan import BuildOptions

SCHEMA = "edgekit.convert-plan/1"
MAX_PLAN_BYTES = 4 << 20
_CHUNK = 1 << 20


class DataFile(BaseModel):
    """A file (or folder) a build reads, with the SHA-256 of its content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> DataFile:
        resolved = Path(path).resolve()
        return cls(path=str(resolved), sha256=content_sha256(resolved))

    def check(self, what: str) -> None:
        """Raise when the file is gone or its content changed since the plan was written."""
        if not Path(self.path).exists():
            raise InvalidOptionError(f"the plan's {what} {self.path} does not exist", "restore the file or plan the build again")
        if content_sha256(Path(self.path)) != self.sha256:
            raise InvalidOptionError(f"the plan's {what} {self.path} changed since the plan was written (SHA-256 differs)",
                                     "restore the file the plan names, or plan the build again")


class PlanFile(BaseModel):
    """One reproducible build: what ``edgekit.convert`` is called with, files named by path and hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: str = SCHEMA
    edgekit_version: str = __version__
    model: DataFile
    calibration_data: DataFile | None = None
    validation_data: DataFile | None = None
    options: BuildOptions

    @property
    def key(self) -> str:
        """The content hash of the build: model and data hashes plus every option except the output folder."""
        document = {
            "model": self.model.sha256,
            "calibration": self.calibration_data.sha256 if self.calibration_data else None,
            "validation": self.validation_data.sha256 if self.validation_data else None,
            "options": self.options.model_dump(mode="json", exclude={"output_dir"}),
            "edgekit": self.edgekit_version,
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def check_files(self) -> None:
        self.model.check("model")
        if self.calibration_data is not None:
            self.calibration_data.check("calibration data")
        if self.validation_data is not None:
            self.validation_data.check("validation data")

    def convert_kwargs(self, output_dir: str | Path | None = None) -> dict[str, Any]:
        """The keywords of ``edgekit.convert`` (model first), the output folder replaced when given."""
        options = self.options.model_dump(exclude_defaults=True)
        if output_dir is not None:
            options["output_dir"] = str(output_dir)
        return {
            "model": self.model.path, **options,
            "calibration_data": self.calibration_data.path if self.calibration_data else None,
            "validation_data": self.validation_data.path if self.validation_data else None,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.model_dump_json(indent=2, by_alias=True) + "\n")
        return path


def content_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's relative file names and contents in sorted order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def read_plan_file(path: str | Path) -> PlanFile:
    """The plan at ``path``, checked: size, JSON, schema, and the model and data files' hashes."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise InvalidOptionError(f"{path} is {size} bytes, more than a plan can be",
                                     "give a plan.json written by edgekit tune")
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidOptionError(f"plan file not found: {path}", "give a plan.json written by edgekit tune") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidOptionError(f"{path} is not a readable plan: {exc}", "give a plan.json written by edgekit tune") from None
    if not isinstance(document, dict) or document.get("schema_") != SCHEMA:
        raise InvalidOptionError(f"{path} is not an edgekit convert plan ({SCHEMA})", "give a plan.json written by edgekit tune")
    try:
        plan = PlanFile.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidOptionError(f"{path} is not a valid plan: {problems}", "give a plan.json written by edgekit tune") from None
    plan.check_files()
    return plan


def convert_plan(plan: str | Path, output_dir: str | Path | None = None, **callbacks: Any) -> Any:
    """Rebuild the build a plan file describes (``edgekit convert --plan``), into ``output_dir`` or the plan's own.

    The model and data files must still have the hashes the plan recorded; ``callbacks`` are ``progress=`` and
    ``cancel=`` of ``edgekit.convert``. With the same edgekit and libraries the artifacts are byte-identical.
    """
    from edgekit.pipeline import convert

    kwargs = read_plan_file(plan).convert_kwargs(output_dir)
    return convert(kwargs.pop("model"), **kwargs, **callbacks)
