"""A local Ray cluster for the tests and benches, each node in its own process group (stopped by killing that
group, never with `ray stop`, which stops every Ray process on the machine). Run it inside a loopback-only network
namespace (bench/loopback_netns.py) so that Ray uses nothing but 127.0.0.1.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HEAD_PORT = 6379
ADDRESS = f"127.0.0.1:{HEAD_PORT}"


class Node:
    """A Ray node process (``ray start --block``) in a new session, its output in ``log``."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL, grace: float = 10.0) -> None:
        """Send ``sig`` to the node's process group (Ray's own processes; its workers exit when their raylet does)
        and wait for the node process, SIGKILLing the group after ``grace`` seconds."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the group (Ray stops its processes), then SIGKILL whatever is left of it."""
        self.kill(signal.SIGTERM)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


WAIT = """
import ray, sys, time
ray.init(address=sys.argv[1], logging_level="ERROR")
resource, nodes, deadline = sys.argv[2], int(sys.argv[3]), time.monotonic() + float(sys.argv[4])
while (resource and resource not in ray.cluster_resources()) or sum(n["Alive"] for n in ray.nodes()) < nodes:
    assert time.monotonic() < deadline, (ray.cluster_resources(), ray.nodes())
    time.sleep(0.3)
"""


def wait_for(address: str, resource: str = "", nodes: int = 1, timeout: float = 120.0) -> None:
    """Wait (in a separate driver) until the cluster has ``resource`` and at least ``nodes`` live nodes."""
    subprocess.run([sys.executable, "-c", WAIT, address, resource, str(nodes), str(timeout)], check=True,
                   capture_output=True, timeout=timeout + 60)


class Head:
    """`ray start --head` on 127.0.0.1 with ``num_cpus`` CPUs, in its own short temp folder."""

    def __init__(self, num_cpus: int = 1) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="ekray", dir="/tmp"))  # Ray's socket paths must stay short
        self.address = ADDRESS
        self.node = Node([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port",
                          str(HEAD_PORT), "--num-cpus", str(num_cpus), "--include-dashboard=false",
                          "--disable-usage-stats", "--temp-dir", str(self.temp)], self.temp / "head.log")
        self.joined: list[Node] = []
        wait_for(self.address, "CPU")

    def join(self, devices: list[str], num_cpus: int = 0, log: Path | None = None) -> Node:
        """`edgekit ray-node --address HEAD --device ...`: a node holding ``devices``, started and joined."""
        from edgekit.tune.executor import device_resource

        command = [sys.executable, "-m", "edgekit.cli", "ray-node", "--address", self.address, "--num-cpus", str(num_cpus)]
        for device in devices:
            command += ["--device", device]
        node = Node(command, log or self.temp / f"node-{'-'.join(devices) or 'cpu'}.log")
        self.joined = [other for other in self.joined if other.process.poll() is None] + [node]
        wait_for(self.address, device_resource(devices[0]) if devices else "", nodes=1 + len(self.joined))
        return node

    def stop(self) -> None:
        self.node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)
