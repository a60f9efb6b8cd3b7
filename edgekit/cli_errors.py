"""How every CLI command ends on an error: the message and hint of an EdgekitError, never a traceback."""
from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from edgekit.errors import EdgekitError
from edgekit.lifetime import Terminated, interrupt_of, stop_on_signals


def friendly_errors(command: Callable[..., Any], *, own_signals: bool = False) -> Callable[..., Any]:
    """Turn EdgekitError into 'error:/hint:' lines and the error's exit code; Ctrl-C into exit 130, SIGTERM/SIGHUP
    into 143/129. ``own_signals``: the command installs its own handlers (a server's graceful shutdown)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not own_signals:
            stop_on_signals()
        try:
            return command(*args, **kwargs)
        except EdgekitError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            context = click.get_current_context(silent=True)
            if exc.detail and context is not None and context.params.get("verbose"):
                click.echo(f"the full message:\n{exc.detail}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, Exception) as exc:  # an interrupt may arrive wrapped by the code it stopped
            stop = interrupt_of(exc)
            if stop is None:
                raise
            how = f"stopped by {stop.args[0]}" if isinstance(stop, Terminated) else "cancelled"
            click.echo(f"{how}: nothing half-written was kept", err=True)
            sys.exit(stop.exit_code if isinstance(stop, Terminated) else 130)

    return wrapper
