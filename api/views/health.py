"""Liveness, readiness and Prometheus metrics.

``/healthz`` touches nothing: a liveness probe that failed on a database outage would have the
orchestrator restart every healthy API process at once. ``/readyz`` checks what serving jobs
needs: the database, Redis, and on each required queue a live Celery worker that has loaded its
models (a job accepted with nobody consuming its queue would wait forever, and one taken by a
worker still loading would wait for the load). Per queue it says how many workers consume it and
how many of those have their models ready.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_flask_exporter import PrometheusMetrics

from api.extensions import celery_client, redis_client, settings
from api.metrics import JobsCollector
from api.problems import Problem
from config.job_types import emotion_model_queues
from db.session import ping
from tasks.events import workers_with_models

bp = Blueprint("health", __name__)

# Worker discovery is a broadcast that always waits its full timeout, so keep it short and
# share one answer between probes for a few seconds.
WORKER_INSPECT_TIMEOUT_S = 0.5
WORKER_CHECK_CACHE_S = 5.0
NOT_TRACKED_PATHS = [r"^/metrics$", r"^/healthz$"]


def required_queues() -> list[str]:
    """The queues model jobs are routed to: the model queue, and that of each other configured
    emotion model (``cpu.<key>``); housekeeping and webhooks are not on the request path."""
    return list(dict.fromkeys([settings().model_queue, *emotion_model_queues(settings())]))


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


class WorkersNotReady(RuntimeError):
    """Workers are up on every required queue, but on some none has its models loaded yet."""

    def __init__(self, message: str, queues: dict[str, dict[str, int]]) -> None:
        super().__init__(message)
        self.queues = queues


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except WorkersNotReady as error:
        result = {"ok": False, "error": str(error), "queues": error.queues}
    except Exception as error:  # noqa: BLE001 - any failure means not ready; say which
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _check_database() -> dict[str, Any]:
    ping(settings().database_url)
    return {}


def _check_redis() -> dict[str, Any]:
    redis_client().ping()
    return {}


class _WorkerProbe:
    """Caches the last broadcast answer per app; a lock makes concurrent probes share one broadcast.

    The broadcast goes out and its replies are read on a broker connection of its own, not one
    of the app's pool: on a pooled connection of an app that had published jobs, the first reply
    could arrive after the probe's timeout, so a live worker was reported missing.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answer: tuple[float, dict[str, list[str]]] | None = None

    def queues_by_worker(self) -> tuple[dict[str, list[str]], bool]:
        with self.lock:
            now = time.monotonic()
            if self.answer is not None and now - self.answer[0] < WORKER_CHECK_CACHE_S:
                return self.answer[1], True
            celery = celery_client()
            with celery.connection_for_write() as connection:
                inspect = celery.control.inspect(timeout=WORKER_INSPECT_TIMEOUT_S, connection=connection)
                replies = inspect.active_queues() or {}
            queues = {worker: sorted(q["name"] for q in consumed) for worker, consumed in replies.items()}
            self.answer = (now, queues)
            return queues, False


def _check_workers() -> dict[str, Any]:
    probe = current_app.extensions.setdefault("samo_worker_probe", _WorkerProbe())
    queues_by_worker, cached = probe.queues_by_worker()
    consumers = {
        queue: sorted(w for w, queues in queues_by_worker.items() if queue in queues) for queue in required_queues()
    }
    loaded = workers_with_models(redis_client(), sorted({w for workers in consumers.values() for w in workers}))
    queues = {queue: {"workers": len(workers), "models_ready": sum(w in loaded for w in workers)}
              for queue, workers in consumers.items()}
    missing = sorted(queue for queue, workers in consumers.items() if not workers)
    if missing:
        raise WorkersNotReady(f"no live worker consumes queue(s): {', '.join(missing)}", queues)
    loading = sorted(queue for queue, counts in queues.items() if not counts["models_ready"])
    if loading:
        raise WorkersNotReady(f"the workers on queue(s) {', '.join(loading)} are still loading their models",
                              queues)
    return {"queues": queues, "cached": cached}



@bp.get("/readyz")
def readyz():
    checks = {"database": _timed(_check_database), "redis": _timed(_check_redis)}
    if not checks["redis"]["ok"] and settings().celery_broker_url == settings().redis_url:
        # No broker: a broadcast would only sit through Celery's connection retries (seconds).
        checks["workers"] = {"ok": False, "error": "skipped: the broker (Redis) is unreachable", "latency_ms": 0.0}
    elif settings().readyz_requires_workers:
        checks["workers"] = _timed(_check_workers)
    failing = [name for name, check in checks.items() if not check["ok"]]
    if failing:
        raise Problem(
            503, "not-ready", "Service not ready", f"Failing checks: {', '.join(failing)}.",
            headers={"Retry-After": "5", "Cache-Control": "no-store"}, checks=checks,
        )
    return {"status": "ready", "checks": checks}, 200, {"Cache-Control": "no-store"}


class _ScrapeSources:
    """What one scrape reads: request metrics, process-wide metrics and the job counts."""

    def __init__(self, app_registry: CollectorRegistry, jobs: JobsCollector) -> None:
        self.app_registry = app_registry
        self.jobs = jobs

    def collect(self):
        if multiprocess_dir():
            # Every gunicorn worker writes its samples to files; sum them all.
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            yield from merged.collect()
        else:
            yield from self.app_registry.collect()
            yield from REGISTRY.collect()
        yield from self.jobs.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


@bp.get("/metrics")
def metrics():
    encoder, content_type = choose_encoder(request.headers.get("Accept"))
    body = encoder(current_app.extensions["samo_metrics_sources"])
    return body, 200, {"Content-Type": content_type}


def init_metrics(app: Flask) -> PrometheusMetrics:
    """Request metrics grouped by URL rule (bounded label values), plus the job metrics.

    Each app gets its own registry for request metrics, so several apps in one process (tests)
    each get working metrics; in multiprocess mode samples go to files whatever the registry.
    """
    registry = CollectorRegistry(auto_describe=True)
    hooks = app.before_request_funcs.setdefault(None, [])
    already = len(hooks)
    exporter = PrometheusMetrics(
        app, path=None, registry=registry, group_by="url_rule", excluded_paths=NOT_TRACKED_PATHS,
    )
    # The exporter's timer must start before auth and rate limiting, which may end a request
    # early (401, 429): registered after them, those answers would be missing from the latency
    # histogram.
    hooks[:] = hooks[already:] + hooks[:already]
    jobs = JobsCollector(app.config["SAMO_SETTINGS"].database_url)
    app.extensions["samo_metrics"] = exporter
    app.extensions["samo_metrics_sources"] = _ScrapeSources(registry, jobs)
    return exporter
