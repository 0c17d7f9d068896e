"""Real processes for integration tests: an HTTP server thread and Celery worker subprocesses."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_python_json(script: str, env: dict[str, str]):
    """Run ``script`` in a fresh interpreter (nothing this test process imported) and decode its last line.

    The metrics multiprocess directory is dropped so the child keeps its metrics to itself.
    """
    env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextmanager
def serve_app_in_thread(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


class CeleryWorker:
    """A `celery worker` subprocess in its own process group, so a test can SIGKILL all of it."""

    def __init__(self, env: dict[str, str], queues=("cpu",), concurrency: int = 1, extra_args=(),
                 module: str | None = None):
        self.env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
        self.queues = queues
        self.concurrency = concurrency
        self.extra_args = list(extra_args)
        self.module = module
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"samo-{uuid.uuid4().hex[:8]}-worker.log"

    def command(self) -> list[str]:
        app = ["-m", self.module] if self.module else ["-m", "celery", "-A", "tasks.worker"]
        base = [sys.executable, *app]
        return base + [
            "worker", "-Q", ",".join(self.queues), "-c", str(self.concurrency), "-n", self.name,
            "--without-gossip", "--without-mingle", "-l", "info", *self.extra_args,
        ]

    def start(self, timeout_s: float = 180) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(), env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the whole worker, parent and pool children, as a crash or OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class GunicornServer:
    """The API as deployed: ``gunicorn -c scripts/gunicorn.conf.py "api:create_app()"``, on a loopback port."""

    def __init__(self, env: dict[str, str], port: int, workers: int = 2):
        self.env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT), "GUNICORN_WORKERS": str(workers),
                    "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESS_LOG": ""}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.base_url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"samo-{uuid.uuid4().hex[:8]}-gunicorn.log"

    def start(self, timeout_s: float = 60) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "api:create_app()"],
            env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_for_workers(timeout_s)

    def worker_pids(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()
                if child.status() != psutil.STATUS_ZOMBIE]

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
