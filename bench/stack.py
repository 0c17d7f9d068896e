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
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import CpuMeter, PostgresBackends, process_tree  # noqa: E402

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

    def __init__(self, name: str, command: list[str], env: dict[str, str], root: Path = ROOT):
        self.name = name
        self.log_path = Path(tempfile.gettempdir()) / f"samo-bench-{name}-{os.getpid()}.log"
        self.process = subprocess.Popen(command, env={**env, "PYTHONPATH": str(root)}, cwd=root,
                                        stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

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


def shared_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The stack's environment. The ONNX export cache and the data folder are this checkout's, so
    a tree checked out elsewhere (bench/compare.py) loads the same exported model."""
    from workers.emotion.data import default_data_dir
    from workers.emotion.export import default_cache_dir

    return {**os.environ, "PYTHONPATH": str(ROOT), "SAMO_DATABASE_URL": database_url,
            "SAMO_REDIS_URL": redis_url, "SAMO_JWT_SECRET": "bench-" + "x" * 40,
            "SAMO_RATE_LIMIT_TIERS": BENCH_TIERS, "SAMO_DEFAULT_TIER": "bench", "GUNICORN_ACCESS_LOG": "",
            "HF_HUB_OFFLINE": "1",
            "SAMO_EMOTION_ONNX_CACHE": os.environ.get("SAMO_EMOTION_ONNX_CACHE") or str(default_cache_dir()),
            "SAMO_GOEMOTIONS_DIR": os.environ.get("SAMO_GOEMOTIONS_DIR") or str(default_data_dir())}


@contextmanager
def bench_services() -> Iterator[dict[str, str]]:
    """A migrated temporary database, a claimed Redis database and the environment pointing at them."""
    from db.migrate import upgrade_to_head
    from tests.support.services import claimed_redis_database, temporary_database

    with temporary_database() as database_url, claimed_redis_database() as redis_url:
        upgrade_to_head(database_url)
        yield shared_environment(database_url, redis_url)


@dataclass
class Services:
    """What :func:`metered_services` made: the environment, the database's name, the private Redis."""

    env: dict[str, str]
    database: str
    redis_pid: int


@contextmanager
def metered_services(root: Path = ROOT) -> Iterator[Services]:
    """A temporary database migrated by ``root``'s own Alembic scripts and a private redis-server on
    a free port, so that every command Redis serves and every backend of that database is the bench's."""
    from sqlalchemy.engine import make_url

    from tests.support.redis_server import own_redis
    from tests.support.services import temporary_database

    with temporary_database() as database_url, own_redis() as redis:
        env = shared_environment(database_url, redis.url)
        run_in_tree(root, env, "from db.migrate import upgrade_to_head; upgrade_to_head(sys.argv[1])", database_url)
        yield Services(env=env, database=make_url(database_url).database, redis_pid=redis.process.pid)


def run_in_tree(root: Path, env: dict[str, str], code: str, *args: str) -> str:
    """``code`` run by ``root``'s own modules in a child process (``sys`` imported); its stdout."""
    result = subprocess.run([sys.executable, "-c", f"import sys; {code}", *args], cwd=root, capture_output=True,
                            text=True, env={**env, "PYTHONPATH": str(root)})
    if result.returncode:
        raise RuntimeError(f"in {root}: {code}\n{result.stderr[-3000:]}")
    return result.stdout


def stack_meter(services: Services, api: Process, worker: Process, interval_s: float = 0.25) -> CpuMeter:
    """A meter of the API's, the worker's, the database's and Redis's processes (bench/cpu.py)."""
    from sqlalchemy.engine import make_url

    from tests.support.services import ADMIN_DATABASE_URL

    admin_dsn = make_url(ADMIN_DATABASE_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    return CpuMeter({"API": process_tree(api.pid), "worker": process_tree(worker.pid),
                     "PostgreSQL": PostgresBackends(admin_dsn, services.database),
                     "Redis": process_tree(services.redis_pid)}, interval_s)


def api_key(env: dict[str, str], root: Path = ROOT) -> str:
    """A key of a new tenant, made by ``root``'s own code (its schema may differ from this checkout's)."""
    code = ("from db.api_keys import create_api_key, create_tenant; from db.session import session_scope\n"
            "with session_scope(sys.argv[1]) as session:\n"
            "    print(create_api_key(session, create_tenant(session, sys.argv[2], 'bench'), name='bench').key)")
    return run_in_tree(root, env, code, env["SAMO_DATABASE_URL"], f"bench-{os.getpid()}").strip().splitlines()[-1]


def start_api(stack: ExitStack, env: dict[str, str], threads: int = 4, root: Path = ROOT) -> str:
    return start_api_process(stack, env, threads, root)[1]


def start_api_process(stack: ExitStack, env: dict[str, str], threads: int = 4,
                      root: Path = ROOT) -> tuple[Process, str]:
    """gunicorn as ``root`` configures it (its scripts/gunicorn.conf.py), and its base URL once it answers."""
    port = free_port()
    api = Process("api", [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "--bind",
                          f"127.0.0.1:{port}", "api:create_app()"], {**env, "GUNICORN_THREADS": str(threads)}, root)
    stack.callback(api.stop)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(base + "/healthz", timeout=2).ok:
                return api, base
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or api.process.poll() is not None:
            raise RuntimeError("gunicorn did not come up:\n" + api.log()[-3000:])
        time.sleep(0.3)


def start_worker(stack: ExitStack, env: dict[str, str], queue: str, name: str, concurrency: int | None = 1,
                 root: Path = ROOT) -> Process:
    """A worker as the Procfile runs it, from ``root``, returned once its model is loaded;
    ``concurrency=None`` leaves Celery's default (one process per CPU)."""
    options = ["--concurrency", str(concurrency)] if concurrency else []
    worker = Process(name, [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "-Q", queue,
                            "--hostname", f"{name}-{os.getpid()}@%h", *options,
                            "--loglevel", "INFO", "--without-gossip", "--without-mingle"], env, root)
    stack.callback(worker.stop)
    worker.wait_for("emotion model loaded")
    return worker
