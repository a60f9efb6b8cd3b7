"""Killed builds leave nothing behind: SIGKILL (of the CLI, of its process group) and SIGTERM at random points."""
from __future__ import annotations

import pytest

from tests.kill_harness import kill

TRIALS = 20


@pytest.mark.slow
def test_random_kills_leave_no_process_no_staging_and_an_old_or_new_folder(tmp_path):
    summary = kill.run(TRIALS, seed=20, folder=tmp_path)
    failed = [r for r in summary["records"] if not r["passed"]]
    assert summary["passes"] == TRIALS, failed
    assert summary["survivors"] == 0 and summary["inconsistent_folders"] == 0
    assert {k: v["trials"] for k, v in summary["by_kind"].items()} == {"sigkill": 7, "sigkill-group": 7, "sigterm": 6}
    assert sum(r["workers_seen"] > 0 for r in summary["records"]) >= TRIALS // 2  # most kills hit a running worker
