"""config/env_file.py: what the dev stack writes is what the CLI and a POSIX shell read back."""
from __future__ import annotations

import stat
import subprocess

import pytest

from config.env_file import read_env_file, write_env_file

VALUES = {"SAMO_DATABASE_URL": "sqlite:////tmp/a b/samo.db", "SAMO_JWT_SECRET": "it's $HOME `x`", "SAMO_EMPTY": ""}


def test_values_round_trip_and_the_file_is_private(tmp_path):
    path = tmp_path / "instance" / "dev-stack.env"
    write_env_file(path, VALUES, header="two\nlines")
    assert read_env_file(path) == VALUES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob("*.partial"))


def test_a_shell_sourcing_the_file_sees_the_same_values(tmp_path):
    path = tmp_path / "dev-stack.env"
    write_env_file(path, VALUES)
    script = f'set -a; . "{path}"; printf "%s\\n" "$SAMO_DATABASE_URL" "$SAMO_JWT_SECRET"'
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert shown.splitlines() == [VALUES["SAMO_DATABASE_URL"], VALUES["SAMO_JWT_SECRET"]]


def test_a_missing_file_is_empty_and_a_malformed_line_is_named(tmp_path):
    assert read_env_file(tmp_path / "absent.env") == {}
    path = tmp_path / "bad.env"
    path.write_text("# comment\nexport SAMO_A=1\n\nnot a setting\n")
    with pytest.raises(ValueError, match=r"bad.env:4"):
        read_env_file(path)
