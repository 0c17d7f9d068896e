"""Environment files: ``NAME=value`` lines, shell-quoted, that a POSIX shell can also source.

The dev stack writes the settings of its run to one (``instance/dev-stack.env``) so that its CLI
talks to the same database and Redis; the CLI reads it under the variables already set.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

DEV_STACK_ENV_FILE = "dev-stack.env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def write_env_file(path: Path, values: dict[str, str], header: str = "") -> None:
    """Replaced whole, private to the user: it may hold secrets."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{name}={shlex.quote(value)}" for name, value in sorted(values.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(partial, path)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of ``path``; an empty mapping when there is no such file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.removeprefix("export ").partition("=")
        if not sep or not _NAME.fullmatch(name):
            raise ValueError(f"{path}:{number}: expected NAME=value")
        words = shlex.split(raw)
        values[name] = words[0] if words else ""
    return values
