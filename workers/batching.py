"""Dynamic batching of queued jobs inside a Celery worker, built on celery-batches.

The worker's main process buffers the messages of a batching task instead of running each
one. It hands the buffer to a pool process as one batch when ``flush_every`` messages are
waiting, or when the first of them has waited ``flush_interval`` seconds, and never while
every pool process is busy: messages that arrive during a forward pass wait in the buffer
and go together as the next batch as soon as a process is free. A lone job on an idle worker
therefore waits at most ``flush_interval``; under load batches grow by themselves. A batch
holds up to ``flush_every`` jobs, counted with the task's ``jobs_in`` (an emotion message
carries every job one API process committed together).

Delivery stays acks-late: every message of a batch is acknowledged only after the batch
returned, that is after its results were stored. A batch whose pool process died is
rejected back to its queue, and a batch that asks for it (the database was unreachable) too.
A worker killed outright leaves its messages unacknowledged; the broker's visibility
timeout hands them to another worker, and the conditional claims of ``db.jobs`` make sure
nothing is stored twice.

Each message still gets Celery's task events (received, started, succeeded or failed), sent
by the batching task for it: see ``workers.batch_events``.

The prefetch count of a batching worker must exceed its batch size, or batches could never
grow past the number of pool processes: :func:`configure_worker` raises it at start-up and
turns on ``worker_disable_prefetch``, so other tasks of the same queue (transcriptions,
summaries) are still only taken when a pool process is free.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from itertools import count
from typing import Any

from celery.worker import state as worker_state
from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

from config.settings import Settings
from workers import batch_events

log = logging.getLogger(__name__)

BULK_TASK = "tasks.bulk.process_chunk"
MODEL_QUEUES = ("gpu", "cpu")


class _PoolUse:
    """Batches running in this worker's pool, over every batching task (they share the pool)."""

    in_flight = 0


_pool_use = _PoolUse()


class DynamicBatches(Batches):
    """A celery-batches task that flushes only into a free pool process, acks late, requeues on loss.

    ``run(requests)`` returns a report (a dict) that the main process reads for metrics; a
    report with ``"requeue": True`` hands every message of the batch back to its queue.
    """

    abstract = True
    flush_every = 32
    flush_interval = 0.005

    def Strategy(self, task, app, consumer):
        self._slots = max(1, getattr(consumer.pool, "limit", None) or 1)
        return super().Strategy(task, app, consumer)

    def _free_slots(self) -> int:
        return self._slots - _pool_use.in_flight - len(worker_state.active_requests)

    @staticmethod
    def jobs_in(request) -> int:
        """How much of a batch one message fills (a task whose messages carry several jobs says so)."""
        return 1

    def _take_batch(self, waiting: list) -> int:
        """How many of the waiting messages (at least one) make the next batch: up to ``flush_every`` jobs."""
        jobs = 0
        for taken, request in enumerate(waiting):
            jobs += self.jobs_in(request)
            if jobs >= self.flush_every:
                return taken + 1
        return len(waiting)

    def _do_flush(self) -> None:
        """Timer tick, full buffer or a batch returned: dispatch the next batch if a process is free.

        ETAs are not honoured: batching tasks are never sent with one.
        """
        if self._free_slots() > 0:
            waiting = list(consume_queue(self._buffer)) + list(consume_queue(self._pending))
            size = self._take_batch(waiting)
            batch, rest = waiting[:size], waiting[size:]
            for request in rest:
                self._buffer.put(request)
            if batch:
                self.flush(batch)
        self._count = count(self._buffer.qsize() + 1)
        if self._buffer.qsize() == 0 and self._tref is not None:
            self._tref.cancel()
            self._tref = None

    def flush(self, requests: Collection) -> Any:
        from workers.metrics import observe_batch

        requests = list(requests)
        simple_requests = [SimpleRequest.from_request(request) for request in requests]
        _pool_use.in_flight += 1
        since = batch_events.started(requests)

        def on_return(report: Any) -> None:
            _pool_use.in_flight -= 1
            if isinstance(report, dict) and report.get("requeue"):
                for request in requests:
                    request.reject(requeue=True)
            else:
                for request in requests:
                    request.acknowledge()
                batch_events.succeeded(requests, report, since)
                observe_batch(report)
            self._do_flush()

        def on_error(error: Any) -> None:
            _pool_use.in_flight -= 1
            log.error("%s batch of %d lost (%r); handing its messages back", self.name, len(requests), error)
            batch_events.failed(requests, error)
            for request in requests:
                request.reject(requeue=True)
            self._do_flush()

        return self._pool.apply_async(
            apply_batches_task, (self, (simple_requests,), 0, None),
            callback=on_return, error_callback=on_error,
        )


#: Characters of text that count as one job toward a batch's ``flush_every``: about one window
#: of the emotion model (``workers.emotion.documents``), so a batch is bounded by the text it
#: holds, not by its number of jobs.
CHARS_PER_JOB = 1000


class JobBatches(DynamicBatches):
    """The batching task of a job type: a message carries the ids of every job one API process
    committed together, and the characters of their texts (``tasks.enqueue.broker_messages``).
    It counts as that many jobs toward ``flush_every``, or as one per :data:`CHARS_PER_JOB`
    characters when that is more: a long document fills a batch as the windows it is read in
    would, and one longer than a batch goes alone."""

    abstract = True

    @staticmethod
    def jobs_in(request) -> int:
        chars = (getattr(request, "kwargs", None) or {}).get("chars") or 0
        return max(1, len(request.args or ()), -(-int(chars) // CHARS_PER_JOB))


def consumed_queues(worker) -> set[str]:
    return {queue.name for queue in worker.app.amqp.queues.consume_from.values()}


def configure_worker(worker, settings: Settings) -> None:
    """Set batch size, wait and prefetch of a model worker and the CPU priority of a bulk worker.

    Runs in the main process before the consumer starts (``celeryd_after_setup``). A worker
    that consumes `bulk` besides a model queue keeps a prefetch of one per process, so it
    never reserves many large bulk chunks; it batches at most one job per pool process then.
    """
    queues = consumed_queues(worker)
    model_queue = next((queue for base in MODEL_QUEUES for queue in sorted(queues)
                        if queue.partition(".")[0] == base), None)
    batching = [task for task in worker.app.tasks.values() if isinstance(task, JobBatches)]
    if model_queue is not None and batching:
        max_size, max_wait_ms = settings.batch_policy(model_queue)
        for task in batching:
            task.flush_every = max(1, max_size)
            task.flush_interval = max(0.0005, max_wait_ms / 1000)
        if "bulk" not in queues and worker.prefetch_multiplier == 1:
            raise_prefetch(worker, 2 * max(1, max_size))
        log.info("dynamic batching on %s: up to %d jobs, %.1f ms wait, prefetch %d", model_queue,
                 max(1, max_size), max_wait_ms, worker.consumer.initial_prefetch_count)
    if BULK_TASK in worker.app.tasks:
        bulk = worker.app.tasks[BULK_TASK]
        bulk.flush_every = 1
        bulk.flush_interval = 0.01
    if queues == {"bulk"} and settings.bulk_worker_nice > 0:
        os.nice(settings.bulk_worker_nice)
        log.info("bulk-only worker: CPU priority lowered by %d", settings.bulk_worker_nice)


def raise_prefetch(worker, multiplier: int) -> None:
    consumer = worker.consumer
    worker.prefetch_multiplier = consumer.prefetch_multiplier = multiplier
    consumer.initial_prefetch_count = max(1, worker.concurrency or 1) * multiplier
    worker.app.conf.worker_disable_prefetch = True


def estimated_tokens(text: str, max_length: int) -> int:
    """About four characters a token, plus the two special tokens; enough for a memory budget."""
    return min(max_length, len(text) // 4 + 2)


def forward_passes(texts: Sequence[str], max_size: int, max_tokens: int = 0,
                   max_length: int = 512) -> list[list[int]]:
    """Indices of ``texts`` in forward passes: longest first, at most ``max_size`` texts each and,
    with a ``max_tokens`` budget, at most that many padded tokens (texts x longest)."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    passes: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in order:
        tokens = estimated_tokens(texts[index], max_length)
        too_many = len(current) >= max_size
        over_budget = max_tokens > 0 and max(width, tokens) * (len(current) + 1) > max_tokens
        if current and (too_many or over_budget):
            passes.append(current)
            current, width = [], 0
        current.append(index)
        width = max(width, tokens)
    if current:
        passes.append(current)
    return passes
