"""What the CLI's modules share: the settings file's values of the running command, and failing with a message."""
from __future__ import annotations

import sys

import click


def env_file_values() -> dict[str, str]:
    """The variables of the root command's ``--env-file`` (empty outside a command)."""
    context = click.get_current_context(silent=True)
    return (context.find_root().obj or {}) if context is not None else {}


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
