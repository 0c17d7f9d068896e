"""The deployed stack for the batching benchmarks: gunicorn (scripts/gunicorn.conf.py) and Celery workers
as the Procfile starts them, on a temporary PostgreSQL database and a free Redis database.

Databases are made the way the tests make them (tests/support/services.py; SAMO_TEST_DATABASE_URL
and SAMO_TEST_REDIS_URL point elsewhere). Texts come from GoEmotions (dev first, then train),
unique, so the result cache never answers for the model.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_TIERS = "bench=1000000000/60/1000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_texts(count: int) -> list[str]:
    """GoEmotions dev texts, topped up from train when ``count`` exceeds dev's 5,426 rows."""
    from workers.emotion.data import default_data_dir, read_split

    texts = list(dict.fromkeys(read_split(default_data_dir() / "dev.tsv").texts))
    if len(texts) < count:
        texts = list(dict.fromkeys(texts + read_split(default_data_dir() / "train.tsv").texts))
    return [text for text in texts if text.strip()][:count]


def load_classifier():
    """The model as a worker loads it (same settings, same process-wide torch defaults)."""
    from config.settings import Settings
    from workers.models import load_emotion_classifier

    return load_emotion_classifier(Settings.from_env())


class Process:
    """A child in its own process group, logging to a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]):
        self.name = name
        self.log_path = Path(tempfile.gettempdir()) / f"samo-bench-{name}-{os.getpid()}.log"
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=open(self.log_path, "wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, marker: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while marker not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {marker!r} after {timeout_s}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def bench_services() -> Iterator[dict[str, str]]:
    """A migrated temporary database, a claimed Redis database and the environment pointing at them."""
    from db.migrate import upgrade_to_head
    from tests.support.services import claimed_redis_database, temporary_database

    with temporary_database() as database_url, claimed_redis_database() as redis_url:
        upgrade_to_head(database_url)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SAMO_DATABASE_URL": database_url,
               "SAMO_REDIS_URL": redis_url, "SAMO_JWT_SECRET": "bench-" + "x" * 40,
               "SAMO_RATE_LIMIT_TIERS": BENCH_TIERS, "SAMO_DEFAULT_TIER": "bench", "GUNICORN_ACCESS_LOG": "",
               "HF_HUB_OFFLINE": "1"}
        yield env


def api_key(env: dict[str, str]) -> str:
    from db.api_keys import create_api_key, create_tenant
    from db.session import session_scope

    with session_scope(env["SAMO_DATABASE_URL"]) as session:
        return create_api_key(session, create_tenant(session, f"bench-{os.getpid()}", "bench"), name="bench").key


def start_api(stack: ExitStack, env: dict[str, str], threads: int = 4) -> str:
    port = free_port()
    api = Process("api", [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "--bind",
                          f"127.0.0.1:{port}", "api:create_app()"], {**env, "GUNICORN_THREADS": str(threads)})
    stack.callback(api.stop)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(base + "/healthz", timeout=2).ok:
                return base
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or api.process.poll() is not None:
            raise RuntimeError("gunicorn did not come up:\n" + api.log()[-3000:])
        time.sleep(0.3)


def start_worker(stack: ExitStack, env: dict[str, str], queue: str, name: str, concurrency: int | None = 1) -> Process:
    """A worker as the Procfile runs it, returned once its model is loaded; ``concurrency=None``
    leaves Celery's default (one process per CPU)."""
    options = ["--concurrency", str(concurrency)] if concurrency else []
    worker = Process(name, [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "-Q", queue,
                            "--hostname", f"{name}-{os.getpid()}@%h", *options,
                            "--loglevel", "INFO", "--without-gossip", "--without-mingle"], env)
    stack.callback(worker.stop)
    worker.wait_for("emotion model loaded")
    return worker
