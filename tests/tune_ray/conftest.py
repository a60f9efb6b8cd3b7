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
import shutil
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
_spec = importlib.util.spec_from_file_location("edgekit_loopback_netns", LAUNCHER)
netns = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netns)


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
_CONFIG: list[pytest.Config] = []
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
        env = {**os.environ, INSIDE: str(reports_path), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
               "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, str(LAUNCHER), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                   *[item.nodeid for item in items]]
        try:
            done = subprocess.run(command, cwd=config.rootpath, env=env, capture_output=True, text=True,
                                  timeout=INNER_TIMEOUT_S)
            output = done.stdout[-6000:] + done.stderr[-3000:]
        except subprocess.TimeoutExpired as exc:
            output = f"the loopback-namespace run timed out after {INNER_TIMEOUT_S} s\n{exc.stdout or ''}"
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

class Node:
    """A Ray node started in its own process group, stopped by killing that group (never `ray stop`)."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None or sig == signal.SIGKILL:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the node's group, then SIGKILL what is left of it."""
        self.kill(signal.SIGTERM)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_resource(address: str, resource: str, present: bool = True, timeout: float = 120.0) -> None:
    """Wait until a node holding ``resource`` has joined (or left) the cluster at ``address``."""
    code = ("import ray,sys,time; ray.init(address=sys.argv[1], logging_level='ERROR'); d=time.monotonic()+float(sys.argv[4])\n"
            "while (sys.argv[2] in ray.cluster_resources()) != (sys.argv[3] == '1'):\n"
            "    assert time.monotonic() < d, ray.cluster_resources(); time.sleep(0.3)")
    subprocess.run([sys.executable, "-c", code, address, resource, "1" if present else "0", str(timeout)], check=True,
                   capture_output=True, timeout=timeout + 60)


def device_node(address: str, device: str, log: Path, num_cpus: int = 0) -> Node:
    """`edgekit ray-node --address ... --device ...`: a node holding ``device``, started and joined."""
    from edgekit.tune.executor import device_resource

    node = Node([sys.executable, "-m", "edgekit.cli", "ray-node", "--address", address, "--device", device,
                 "--num-cpus", str(num_cpus)], log)
    wait_for_resource(address, device_resource(device))
    return node


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """`ray start --head` with one CPU on 127.0.0.1 in its own short temp folder; yields its address."""
    if INSIDE not in os.environ:
        pytest.fail("Ray clusters start only inside the loopback namespace (mark the test loopback_netns)")
    temp = Path(tempfile.mkdtemp(prefix="ekray", dir="/tmp"))  # Ray's socket paths must stay short
    address = "127.0.0.1:6379"
    head = Node([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port", "6379",
                 "--num-cpus", "1", "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(temp)],
                temp.parent / f"{temp.name}-head.log")
    try:
        wait_for_resource(address, "CPU")
        yield address
    finally:
        head.stop()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def two_nodes(ray_head: str) -> Iterator[str]:
    """The head (1 CPU, builds) and a measurement-only node holding device ``bench-b``; yields the head's address."""
    log = Path(tempfile.gettempdir()) / f"ekray-node-{os.getpid()}.log"
    node = device_node(ray_head, "bench-b", log)
    try:
        yield ray_head
    finally:
        node.stop()
        log.unlink(missing_ok=True)
