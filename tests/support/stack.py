"""A whole stack on its own Redis database: the API over HTTP, a batching `cpu` worker and a `bulk` worker.

Its own Redis database keeps the session's other workers from taking its messages, and its
messages (bulk chunks from API tests, say) away from them.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import requests

from tests.conftest import settings_env
from tests.support.ports import free_port
from tests.support.processes import CeleryWorker, serve_app_in_thread
from tests.support.services import claimed_redis_database


@dataclasses.dataclass
class Stack:
    settings: object
    base_url: str
    env: dict[str, str]
    workers: dict[str, CeleryWorker]
    metrics_ports: dict[str, int]

    def metrics(self, worker: str) -> str:
        return requests.get(f"http://127.0.0.1:{self.metrics_ports[worker]}/metrics", timeout=10).text


@contextmanager
def isolated_stack(settings, worker_queues: dict[str, tuple[str, ...]], module: str | None = None,
                   extra_env: dict[str, str] | None = None, start_workers: bool = True,
                   redis_url: str | None = None, **overrides) -> Iterator[Stack]:
    """``worker_queues`` names the workers (``{"cpu": ("cpu",), "bulk": ("bulk",)}``); the API is up
    before they start, and with ``start_workers`` False the test starts them itself. ``redis_url``:
    a Redis of the test's own (``tests.support.redis_server``), else a claimed database of the
    shared one."""
    from api import create_app

    with nullcontext(redis_url) if redis_url else claimed_redis_database() as redis_url:
        isolated = dataclasses.replace(settings, redis_url=redis_url, **overrides)
        env = {**settings_env(isolated), "SAMO_BULK_CHUNK_SIZE": str(isolated.bulk_chunk_size),
               **(extra_env or {})}
        ports = {name: free_port() for name in worker_queues}
        workers = {name: CeleryWorker({**env, "SAMO_WORKER_METRICS_PORT": str(ports[name])}, queues=queues,
                                      module=module)
                   for name, queues in worker_queues.items()}
        with serve_app_in_thread(create_app(isolated, {"TESTING": True})) as base_url:
            try:
                for worker in workers.values() if start_workers else ():
                    worker.start()
                yield Stack(isolated, base_url, env, workers, ports)
            finally:
                for worker in workers.values():
                    worker.stop()
