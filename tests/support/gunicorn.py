"""The API as deployed, for tests that need it over real HTTP in several processes: gunicorn with
scripts/gunicorn.conf.py and two worker processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import settings_env
from tests.support.ports import free_port
from tests.support.processes import REPO_ROOT


@contextmanager
def gunicorn_server(settings, log_dir: Path, **extra_env: str) -> Iterator[str]:
    """The API as deployed: gunicorn with scripts/gunicorn.conf.py and two worker processes."""
    port = free_port()
    env = {**os.environ, **settings_env(settings), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
           "GUNICORN_THREADS": "2", "GUNICORN_ACCESS_LOG": "", "PYTHONPATH": str(REPO_ROOT), **extra_env}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = log_dir / f"gunicorn-{port}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "api:create_app()"],
        env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                if requests.get(base + "/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
