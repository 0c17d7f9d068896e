"""Real processes for integration tests: an HTTP server thread, Celery worker subprocesses and gunicorn."""
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


