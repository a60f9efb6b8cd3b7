"""Promoting a tune trial: its cached build becomes the build folder, in one atomic swap (``edgekit.transaction``)."""
from __future__ import annotations

import shutil
from pathlib import Path

from edgekit.errors import InvalidOptionError
from edgekit.specs import Build
from edgekit.tune.report import TuneResult

PLAN_NAME = "edgekit-plan.json"  # the promoted build's plan: `edgekit convert --plan` rebuilds it


def select(trial: int, output_dir: str | Path = "build/edgekit") -> Build:
    """Publish trial ``trial``'s build (artifact, manifest and its plan as ``edgekit-plan.json``) as ``output_dir``."""
    from edgekit.manifest import load_build
    from edgekit.transaction import BuildTransaction

    result = TuneResult.load(output_dir)
    try:
        record = result.trial(trial)
    except KeyError:
        numbers = ", ".join(str(r.number) for r in result.trials)
        raise InvalidOptionError(f"the study has no trial {trial}", f"trials: {numbers}") from None
    build = record.build
    if record.state != "complete" or build is None or build.build_dir is None or not Path(build.build_dir).is_dir():
        raise InvalidOptionError(f"trial {trial} has no build to promote ({record.state}: {record.reason or 'no build'})",
                                 f"choose a trial of the front: {', '.join(str(r.number) for r in result.front)}")
    plan = Path(build.build_dir).parent / f"{build.key[:20]}.plan.json"
    with BuildTransaction(output_dir) as txn:
        shutil.copytree(build.build_dir, txn.build_dir, dirs_exist_ok=True, symlinks=False)
        if plan.is_file():
            shutil.copyfile(plan, txn.build_dir / PLAN_NAME)
        txn.commit()
    return load_build(output_dir)
