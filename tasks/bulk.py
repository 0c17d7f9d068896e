"""Bulk batch items on the `bulk` queue: one message per chunk of a batch, analysed in forward passes.

A chunk message names a batch and the row numbers of up to ``bulk_chunk_size`` of its items.
The worker claims the unfinished ones in one UPDATE, analyses them like interactive jobs
(``tasks.lifecycle.process_claimed`` with the emotion handler: result cache, length-sorted passes of
``bulk_batch_size`` texts, the results of each pass stored in one transaction, so a batch's counts
move pass by pass and its live ``progress`` events, ``tasks.live_events``, with them) and then
completes the batch if none of its items is left unfinished. Canceled items are not claimed, and a result for an item
canceled meanwhile is discarded by the conditional UPDATE.

A separate `bulk` queue and worker keep interactive jobs from ever waiting behind a large
upload; a worker that consumes both (a small deployment) takes `bulk` only when its model
queue is empty (``config.celery``), so an interactive job waits at most one chunk.
"""
from __future__ import annotations

import logging
import time
import uuid

import redis
from celery import shared_task
from sqlalchemy.exc import OperationalError

from config.job_types import job_type
from db import documents
from db.batches import claim_chunk, complete_if_done, mark_enqueued, stale_chunks, status_counts
from db.models import Batch
from tasks.enqueue import enqueue_chunk
from tasks.events import batch_finished, batch_progress
from tasks.jobs import DATABASE_RETRY_DELAY_S
from tasks.lifecycle import BatchReport, process_claimed
from tasks.live_events import append, batch_progress_due
from tasks.maintenance import RETRY_OPTIONS, BrokerMarker
from tasks.services import Services, current
from workers.batching import DynamicBatches
from workers.metrics import queue_keys

#: The job type of every batch item.
ITEM_TYPE = "emotion"

log = logging.getLogger(__name__)


@shared_task(base=DynamicBatches, name="tasks.bulk.process_chunk")
def process_chunk(requests) -> dict:
    """`process_chunk(batch_id, rows)` messages, one chunk at a time (``flush_every`` is 1 here)."""
    services = current()
    report = BatchReport("bulk", type=ITEM_TYPE, announce_jobs=False, max_size=services.settings.bulk_batch_size)
    try:
        for request in requests:
            batch_id, rows = request.args
            run_chunk(services, uuid.UUID(batch_id), [int(row) for row in rows], report)
    except OperationalError:
        log.warning("database unavailable for a bulk chunk; handing it back", exc_info=True)
        time.sleep(DATABASE_RETRY_DELAY_S)
        return {"requeue": True}
    return report.as_dict()


def run_chunk(services: Services, batch_id: uuid.UUID, rows: list[int], report: BatchReport) -> None:
    with services.session() as session:
        jobs = claim_chunk(session, batch_id, rows)
    if not jobs:
        log.info("chunk of batch %s: nothing left to do", batch_id)
        return
    step = max(1, services.settings.bulk_batch_size)
    stored = []
    for start in range(0, len(jobs), step):
        stored += process_claimed(services, job_type(ITEM_TYPE), jobs[start:start + step], report)
        if start + step < len(jobs):
            publish_progress(services, batch_id)
    if stored:
        finish_batch_if_done(services, batch_id)


def publish_progress(services: Services, batch_id: uuid.UUID) -> None:
    """The batch's live ``progress`` event, read from the database, unless another was sent just now."""
    if not batch_progress_due(services.redis, services.settings, batch_id):
        return
    with services.session() as session:
        batch = session.get(Batch, batch_id)
        data = documents.batch_progress(batch, status_counts(session, batch_id)) if batch is not None else None
    if data is not None:
        append(services.redis, services.settings, "batch", batch_id, "progress", data)


def finish_batch_if_done(services: Services, batch_id: uuid.UUID) -> None:
    """Complete the batch if this chunk was its last; otherwise report progress (throttled in events)."""
    with services.session() as session:
        completed = complete_if_done(session, batch_id)
    if completed:
        log.info("batch %s completed", batch_id)
        batch_finished(services, batch_id, "completed")
    else:
        batch_progress(services, batch_id)
        publish_progress(services, batch_id)


@shared_task(name="tasks.bulk.requeue_stale_chunks", **RETRY_OPTIONS)
def requeue_stale_chunks() -> int:
    """Publish again the chunks of batch items whose message may have been lost.

    Items never published, and items running for twice the visibility timeout, always count.
    Items waiting longer than ``requeue_after_s`` count only while the `bulk` queue is empty:
    behind a long queue, waiting is no sign of a lost message. After the broker lost its data
    (``tasks.maintenance.BrokerMarker``), every waiting item counts at once. Publishing twice is
    harmless (claims are conditional), publishing never loses work.
    """
    services = current()
    settings = services.settings
    marker = BrokerMarker(settings.celery_broker_url, "chunks")
    if marker.data_lost():
        waiting_after_s = 0.0
    elif bulk_queue_is_empty(settings.celery_broker_url):
        waiting_after_s = settings.requeue_after_s
    else:
        waiting_after_s = None
    with services.session() as session:
        chunks = stale_chunks(session, waiting_after_s, settings.broker_visibility_timeout_s * 2,
                              settings.requeue_unpublished_after_s)
    sent = 0
    for batch_id, rows in chunks:
        if enqueue_chunk(services.celery, batch_id, rows):
            with services.session() as session:
                mark_enqueued(session, batch_id, rows)
            sent += 1
    if len(chunks) == sent:
        marker.leave()
    if sent:
        log.info("requeued %d stale chunks", sent)
    return sent


def bulk_queue_is_empty(broker_url: str) -> bool:
    """True when no chunk message waits in Redis; False when unknown (another broker, Redis down)."""
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return False
    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
        with client.pipeline(transaction=False) as pipe:
            for key in queue_keys("bulk"):
                pipe.llen(key)
            return sum(pipe.execute()) == 0
    except redis.RedisError:
        return False
