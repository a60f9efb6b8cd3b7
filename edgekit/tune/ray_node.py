"""``edgekit ray-node``: start a Ray node (head or worker) that advertises the devices it reaches.

It runs Ray's own ``ray start --block`` with this interpreter (so the node's workers import the same edgekit),
one custom resource per device (:func:`edgekit.tune.executor.device_resource`, amount 1: one measurement at a
time per device) and Ray's token authentication on. The same node by hand::

    RAY_AUTH_MODE=token ray start --address HEAD:6379 --resources '{"edgekit_device_pixel7": 1}'
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import click

from edgekit.cli_errors import friendly_errors
from edgekit.dependencies import install_line, require
from edgekit.errors import ClusterError
from edgekit.tune.executor import device_resource


def node_command(*, head: bool, address: str | None, devices: Sequence[str], num_cpus: int | None = None,
                 port: int = 6379, node_ip: str | None = None, temp_dir: str | None = None) -> list[str]:
    """The ``ray start`` command line for this node."""
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               "--resources", json.dumps({device_resource(d): 1 for d in devices})]
    if head:
        command += ["--head", "--port", str(port), "--include-dashboard=false"]
        if temp_dir:
            command += ["--temp-dir", temp_dir]
    else:
        command += ["--address", address or ""]
    if num_cpus is not None:
        command += ["--num-cpus", str(num_cpus)]
    if node_ip:
        command += ["--node-ip-address", node_ip]
    return command


def has_token(environ: dict[str, str] | None = None) -> bool:
    """Whether Ray finds an authentication token: ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN"):
        return True
    path = Path(env["RAY_AUTH_TOKEN_PATH"]) if env.get("RAY_AUTH_TOKEN_PATH") else Path.home() / ".ray" / "auth_token"
    return path.is_file() and path.stat().st_size > 0


def node_environment(head: bool) -> dict[str, str]:
    """This process's environment with token authentication on (a head makes a token when there is none)."""
    env = dict(os.environ)
    if env.setdefault("RAY_AUTH_MODE", "token") != "token" or has_token(env):
        return env
    if not head:
        raise ClusterError("no Ray authentication token on this machine, so it cannot join the cluster",
                           "copy the head's token: set RAY_AUTH_TOKEN to what `ray get-auth-token` prints on the head")
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "get-auth-token", "--generate"], env=env,
                   check=True, capture_output=True)
    click.echo(f"made a Ray token in {Path.home() / '.ray' / 'auth_token'}: give it to each node (RAY_AUTH_TOKEN)", err=True)
    return env


@click.command("ray-node")
@partial(friendly_errors, own_signals=True)
@click.option("--head", is_flag=True, help="Start the cluster's head node (it prints the address others join).")
@click.option("--address", metavar="HOST:PORT", help="The head node's address, to join a running cluster.")
@click.option("--device", "devices", multiple=True, metavar="ID",
              help="A device this node reaches (repeatable): measurements for it run only here.")
@click.option("--num-cpus", type=click.IntRange(min=0), help="CPUs for builds (0: a measurement-only node).")
@click.option("--port", type=click.IntRange(1, 65535), default=6379, show_default=True, help="The head's port.")
@click.option("--node-ip-address", "node_ip", help="The address this node is reached at (several interfaces).")
@click.option("--temp-dir", type=click.Path(file_okay=False), help="Ray's session folder (head only).")
def ray_node_command(head: bool, address: str | None, devices: tuple[str, ...], num_cpus: int | None, port: int,
                     node_ip: str | None, temp_dir: str | None) -> None:
    """Run a Ray node for `edgekit tune --executor ray` until interrupted, advertising the devices it reaches."""
    require(["ray"], install_line("ray"), "edgekit ray-node")
    if head == bool(address):
        raise click.UsageError("give either --head or --address HOST:PORT")
    env = node_environment(head)
    for device in devices:
        click.echo(f"device {device}: resource {device_resource(device)}", err=True)
    command = node_command(head=head, address=address, devices=devices, num_cpus=num_cpus, port=port, node_ip=node_ip,
                           temp_dir=temp_dir)
    sys.exit(run_forwarding_signals(command, env))


def run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` until it exits; SIGINT, SIGTERM and SIGHUP are passed on so that Ray stops its processes."""
    process = subprocess.Popen(command, env=env)
    previous = {sig: signal.signal(sig, lambda signum, _frame: process.send_signal(signum))
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
