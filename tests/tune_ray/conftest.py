"""Ray clusters for the tests, only ever on loopback.

Tests marked ``loopback_netns`` run in a second pytest process inside a private network namespace whose only
interface is ``lo`` (bench/loopback_netns.py), so Ray cannot advertise or reach any other address; their reports
come back to this session as the inner run wrote them (pytest's own report serialisation). Where no namespace
can be made (not Linux, not root) they are skipped with the reason.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

INSIDE = "EDGEKIT_TEST_NETNS_REPORTS"
TESTS = Path(__file__).resolve().parents[1]
LAUNCHER = TESTS.parent / "bench" / "loopback_netns.py"
INNER_TIMEOUT_S = 900


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"edgekit_bench_{name}", TESTS.parent / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


netns = _bench_module("loopback_netns")
local_ray = _bench_module("local_ray")


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]
    config.addinivalue_line("markers", "loopback_netns: runs in a private network namespace with only loopback")


def _netns_items(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if item.get_closest_marker("loopback_netns") is not None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = _netns_items(items)
    if not marked or INSIDE in os.environ:
        return
    problem = netns.problem()
    config.stash[_PROBLEM] = problem
    for item in marked:
        if problem:
            item.add_marker(pytest.mark.skip(reason=f"Ray tests run only on loopback: {problem}"))


_PROBLEM = pytest.StashKey[str | None]()
_REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Outside the namespace, a marked test's reports are those of its run inside it."""
    if INSIDE in os.environ or item.get_closest_marker("loopback_netns") is None or item.config.stash.get(_PROBLEM, None):
        return None
    reports = item.config.stash.get(_REPORTS, None)
    if reports is None:
        reports = item.config.stash[_REPORTS] = _run_inside(item.config, _netns_items(item.session.items))
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in reports.get(item.nodeid) or [_lost(item, reports.get("", ""))]:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Inside the namespace: append each report to the file the outer session reads."""
    path = os.environ.get(INSIDE)
    if path and report.nodeid:
        data = _CONFIG[0].hook.pytest_report_to_serializable(config=_CONFIG[0], report=report)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(data) + "\n")


def _run_inside(config: pytest.Config, items: list[pytest.Item]) -> dict:
    """Run ``items`` in one pytest process inside a loopback-only namespace; their reports by node id."""
    with tempfile.TemporaryDirectory(prefix="edgekit-netns-") as folder:
        reports_path = Path(folder) / "reports.jsonl"
        path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))  # the nodes import tune_ray
        env = {**os.environ, INSIDE: str(reports_path), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
               "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}
        command = [sys.executable, str(LAUNCHER), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                   *[item.nodeid for item in items]]
        inner = subprocess.Popen(command, cwd=config.rootpath, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        try:
            output = inner.communicate(timeout=INNER_TIMEOUT_S)[0][-8000:]
        except subprocess.TimeoutExpired:  # Ctrl-C, so that its fixtures stop the Ray nodes they started
            inner.send_signal(signal.SIGINT)
            try:
                output = inner.communicate(timeout=120)[0][-8000:]
            except subprocess.TimeoutExpired:
                inner.kill()
                output = inner.communicate()[0][-8000:]
            output = f"the loopback-namespace run timed out after {INNER_TIMEOUT_S} s\n{output}"
        reports: dict = {"": output}
        if reports_path.exists():
            for line in reports_path.read_text(encoding="utf-8").splitlines():
                report = config.hook.pytest_report_from_serializable(config=config, data=json.loads(line))
                reports.setdefault(report.nodeid, []).append(report)
    return reports


def _lost(item: pytest.Item, output: str) -> pytest.TestReport:
    return pytest.TestReport(item.nodeid, item.location, {}, "failed",
                             f"no report from the loopback-namespace run:\n{output}", "call")


# --- Ray clusters (inside the namespace) ---

@pytest.fixture(scope="module")
def ray_head() -> Iterator[local_ray.Head]:
    """`ray start --head` with one CPU on 127.0.0.1 (bench/local_ray.py)."""
    if INSIDE not in os.environ:
        pytest.fail("Ray clusters start only inside the loopback namespace (mark the test loopback_netns)")
    head = local_ray.Head(num_cpus=1)
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="module")
def two_nodes(ray_head: local_ray.Head) -> Iterator[str]:
    """The head (1 CPU, builds) and a measurement-only node holding device ``bench-b``; yields the head's address."""
    node = ray_head.join(["bench-b"])
    try:
        yield ray_head.address
    finally:
        node.stop()
