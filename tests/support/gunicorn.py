"""The API as deployed, for tests that need it over real HTTP in several processes: gunicorn with
scripts/gunicorn.conf.py (``gunicorn_server`` for a test's duration, ``GunicornServer`` for tests
that signal its processes)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import settings_env
from tests.support.ports import free_port
from tests.support.processes import REPO_ROOT


class GunicornServer:
    """The API as deployed: ``gunicorn -c scripts/gunicorn.conf.py "api:create_app()"``, on a loopback port."""

    def __init__(self, env: dict[str, str], port: int, workers: int = 2, log_path: Path | None = None):
        self.env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT), "GUNICORN_WORKERS": str(workers),
                    "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESS_LOG": ""}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.base_url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"samo-{uuid.uuid4().hex[:8]}-gunicorn.log"

    def start(self, timeout_s: float = 60) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "api:create_app()"],
            env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_for_workers(timeout_s)

    def worker_pids(self) -> list[int]:
        """The master's live children; one that exits while they are listed is left out."""
        import psutil

        pids = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids

    def wait_for_workers(self, timeout_s: float, replacing: frozenset[int] = frozenset()) -> list[int]:
        """Until ``workers`` live workers, none of them in ``replacing``, have each loaded the app."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            pids = [pid for pid in self.worker_pids() if pid not in replacing]
            booted = self.log_path.read_text(errors="replace")
            if len(pids) >= self.workers and all(f"Worker serving (pid: {pid})" in booted for pid in pids):
                return pids
            time.sleep(0.2)
        raise TimeoutError(f"gunicorn workers not up after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def gunicorn_server(settings, log_dir: Path, **extra_env: str) -> Iterator[str]:
    """The API as deployed, for a block: two worker processes of two threads each, on ``settings``."""
    port = free_port()
    server = GunicornServer({**settings_env(settings), "GUNICORN_THREADS": "2", **extra_env}, port, workers=2,
                            log_path=log_dir / f"gunicorn-{port}.log")
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()
