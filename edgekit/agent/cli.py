"""``edgekit agent``: the command that runs the profiling agent on a device."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from edgekit.errors import EdgekitError, InvalidOptionError

TOKEN_ENV = "EDGEKIT_AGENT_TOKEN"
MIN_TOKEN_LENGTH = 16


@click.command(name="agent")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: 127.0.0.1, ::1, an address of this machine, or 0.0.0.0 / :: for every interface.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free port).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=str),
              help=f"File holding the token clients must give (default: ${TOKEN_ENV}, else a random one is printed).")
@click.option("--max-upload-mb", type=float, default=512.0, show_default=True, help="Largest upload accepted.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Another name clients reach the agent by (Host header), e.g. pi5.local (repeatable).")
@click.option("--read-timeout", type=float, default=30.0, show_default=True,
              help="Seconds a client may take to send request headers, or pause in an upload.")
@click.option("--max-connections", type=int, default=64, show_default=True, help="Requests served at once (more: 503).")
@click.option("--max-uploads", "max_pending_uploads", type=int, default=2, show_default=True,
              help="Uploads received at once (more: 503).")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a self-signed certificate; clients pin its printed fingerprint.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the TLS certificate is kept (default: $EDGEKIT_AGENT_HOME or ~/.local/state/edgekit/agent).")
@click.option("--announce/--no-announce", default=False, show_default=True, help="Announce the agent on the LAN (zeroconf).")
def agent_command(token_file: str | None, announce: bool, **options) -> None:
    """Run the profiling agent on this device (needs a model runtime only, no TensorFlow or PyTorch)."""
    from edgekit.cli_errors import friendly_errors

    friendly_errors(_run, own_signals=True)(token_file, announce, options)  # uvicorn shuts down on SIGTERM


def _run(token_file: str | None, announce: bool, options: dict) -> None:
    from edgekit.agent.settings import AgentSettings

    settings = AgentSettings.checked(**options)
    token = _token(token_file)
    _require("uvicorn", "starlette", *(["cryptography"] if settings.tls else []))
    from edgekit.agent.server import serve

    serve(settings, token, announce=announce)


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise EdgekitError(f"the agent needs {', '.join(missing)}, which is not installed",
                           "pip install 'edgekit[agent]'")


def _token(token_file: str | None) -> str:
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidOptionError(f"cannot read the token file {token_file}: {exc}",
                                     "give a text file holding the token") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        token = secrets.token_urlsafe(24)
        click.echo(f"no token given; clients must use: {TOKEN_ENV}={token}", err=True)
    if len(token) < MIN_TOKEN_LENGTH:
        raise InvalidOptionError(f"the agent token is shorter than {MIN_TOKEN_LENGTH} characters",
                                 "use a long random token, e.g. openssl rand -hex 16")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise InvalidOptionError("the agent token has spaces or characters that cannot go in an HTTP header",
                                 "use letters, digits and punctuation only, e.g. openssl rand -hex 16")
    return token
