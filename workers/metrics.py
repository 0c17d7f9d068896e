"""Prometheus metrics of a Celery worker, served by its main process on ``SAMO_WORKER_METRICS_PORT``.

Batching tasks (``workers.batching``) run in pool processes but hand a report of every batch
back to the main process, so plain in-process metrics there see every batch of every pool
process without prometheus_client's multiprocess files, and survive pool process restarts.
Queue depth is read from Redis at scrape time, for the queues this worker consumes.

Scrape each worker on its own port (0 turns the endpoint off); several workers on one host
need different ports. Queue depth is the same number seen from every worker of a queue: take
``max by (queue)`` across them.
"""
from __future__ import annotations

import logging

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()

BATCH_SIZE = Histogram(
    "samo_worker_batch_size", "Texts per forward pass of the model, by queue.", ["queue"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=REGISTRY,
)
INFERENCE_SECONDS = Histogram(
    "samo_worker_inference_seconds", "Model time of a batch of jobs (all its forward passes), by queue.",
    ["queue"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY,
)
JOBS = Counter(
    "samo_worker_jobs", "Jobs this worker brought to a terminal state, by type and status.",
    ["type", "status"], registry=REGISTRY,
)
RESULT_CACHE = Counter(
    "samo_worker_result_cache_lookups", "Result cache lookups by outcome (hit, miss).", ["outcome"],
    registry=REGISTRY,
)

# kombu's Redis transport keeps a queue's messages of priority p > 0 in list `<queue>\x06\x16<p>`.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def observe_batch(report) -> None:
    """Record one batch report: ``{queue, type, passes: [texts per pass], inference_s, cache_hits,
    cache_misses, statuses: {status: jobs}}``. Anything else (a failed batch) is ignored."""
    if not isinstance(report, dict) or "queue" not in report:
        return
    queue = report["queue"]
    for size in report.get("passes", ()):
        BATCH_SIZE.labels(queue=queue).observe(size)
    if report.get("passes"):
        INFERENCE_SECONDS.labels(queue=queue).observe(report.get("inference_s", 0.0))
    for status, number in report.get("statuses", {}).items():
        if number:
            JOBS.labels(type=report.get("type", "emotion"), status=status).inc(number)
    if report.get("cache_hits"):
        RESULT_CACHE.labels(outcome="hit").inc(report["cache_hits"])
    if report.get("cache_misses"):
        RESULT_CACHE.labels(outcome="miss").inc(report["cache_misses"])


def queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


class QueueDepthCollector:
    """``samo_queue_depth{queue}``: messages waiting in Redis, read when scraped."""

    def __init__(self, broker_url: str, queues: list[str]) -> None:
        self.client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
        self.queues = sorted(queues)

    def collect(self):
        depth = GaugeMetricFamily("samo_queue_depth", "Messages waiting in each queue this worker consumes.",
                                  labels=["queue"])
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    for key in queue_keys(queue):
                        pipe.llen(key)
                lengths = pipe.execute()
        except redis.RedisError as error:
            log.warning("queue depth unavailable: %s", type(error).__name__)
            return
        per_queue = len(PRIORITY_STEPS) + 1
        for index, queue in enumerate(self.queues):
            depth.add_metric([queue], sum(lengths[index * per_queue:(index + 1) * per_queue]))
        yield depth


_server_started = False


def serve(port: int, broker_url: str, queues: list[str]) -> None:
    """Start the worker's /metrics endpoint (once per process; port 0: not at all)."""
    global _server_started
    if port <= 0 or _server_started:
        return
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        REGISTRY.register(QueueDepthCollector(broker_url, queues))
    start_http_server(port, registry=REGISTRY)
    _server_started = True
    log.info("worker metrics on :%d/metrics", port)
