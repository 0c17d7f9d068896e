"""A PostgreSQL server of a test's own, which the test may stop and start (the shared one never stops).

A throwaway cluster (``initdb``) in a temporary directory, on a free loopback port, with trust
authentication. PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` user.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port

SERVER_USER = "postgres"


def server_binaries() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, or where ``PATH`` finds it."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


class OwnPostgres:
    def __init__(self, binaries: Path, directory: Path) -> None:
        self.binaries = binaries
        self.data_dir = directory / "data"
        self.log_path = directory / "server.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://{SERVER_USER}@127.0.0.1:{self.port}/postgres"
        self._as_server_user = os.geteuid() == 0

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.binaries / program), *args]
        if self._as_server_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr[-2000:]}\n{log[-2000:]}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-U", SERVER_USER, "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.data_dir}' "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session, as a restart does; ``immediate`` as a crash does."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started server; stopped and deleted afterwards, whatever state the test left it in."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) installed")
    directory = Path(tempfile.mkdtemp(prefix="samo-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SERVER_USER)
    server = OwnPostgres(binaries, directory)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(directory, ignore_errors=True)
