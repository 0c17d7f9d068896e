"""What happens after a job reaches a terminal state, once its transaction has committed.

Whoever stores a terminal state stages the job's webhook deliveries in the same transaction
(``tasks.webhook_events.stage_job_events``), then calls ``job_finished`` after the commit; this is
the one place where follow-up work hangs (a Redis notification for callers waiting on the job,
publishing those deliveries).
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import redis

from tasks.services import Services
from tasks.webhook_events import emit_batch_event, publish

log = logging.getLogger(__name__)

FINISHED_CHANNEL = "samo:jobs:finished:{}"

def finished_channel(job_id: uuid.UUID | str) -> str:
    return FINISHED_CHANNEL.format(job_id)


def job_finished(services: Services, job_id: uuid.UUID, status: str, deliveries: Sequence[uuid.UUID] = ()) -> None:
    """Tell whoever waits on the job and publish the webhook deliveries staged with its terminal
    state. Best effort: the stored state stays the truth, and an unpublished delivery is sent by the sweep."""
    jobs_finished(services, [job_id], status, deliveries)


def jobs_finished(services: Services, job_ids: list[uuid.UUID], status: str, deliveries: Sequence[uuid.UUID] = ()
                  ) -> None:
    """:func:`job_finished` for many jobs stored in one transaction (a batch of jobs): one
    pipelined publish for all waiters, then the deliveries staged with them."""
    if not job_ids:
        return
    try:
        with services.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.publish(finished_channel(job_id), status)
            pipe.execute()
    except redis.RedisError:
        log.warning("could not publish completion of %d jobs", len(job_ids), exc_info=True)
    if not deliveries:
        return
    try:
        publish(services.settings, services.celery, list(deliveries))
    except Exception:  # noqa: BLE001 - the deliveries are stored: the sweep sends them
        log.warning("could not publish the webhooks of %d jobs", len(job_ids), exc_info=True)


BATCH_FINISHED_CHANNEL = "samo:batches:finished:{}"


def batch_finished(services: Services, batch_id: uuid.UUID, status: str) -> None:
    """A batch ended (``completed`` or ``canceled``), called once by whoever stored that.

    Each of its items also went through :func:`job_finished` when a worker finished it;
    items canceled with their batch do not.
    """
    try:
        services.redis.publish(BATCH_FINISHED_CHANNEL.format(batch_id), status)
    except redis.RedisError:
        log.warning("could not publish the end of batch %s", batch_id, exc_info=True)
    if status == "completed":
        _queue_batch_webhooks(services, batch_id, "batch.completed")


BATCH_PROGRESS_THROTTLE_KEY = "samo:webhooks:batch-progress:{}"


def batch_progress(services: Services, batch_id: uuid.UUID) -> None:
    """Some items of a batch finished: a ``batch.progress`` webhook, at most one per batch every
    ``SAMO_WEBHOOK_PROGRESS_INTERVAL_S`` seconds however many workers call this (a Redis SET NX)."""
    try:
        first = services.redis.set(BATCH_PROGRESS_THROTTLE_KEY.format(batch_id), 1, nx=True,
                                     ex=max(1, services.settings.webhook_progress_interval_s))
    except redis.RedisError:
        log.warning("could not throttle progress webhooks of batch %s", batch_id, exc_info=True)
        return
    if first:
        _queue_batch_webhooks(services, batch_id, "batch.progress")


def _queue_batch_webhooks(services: Services, batch_id: uuid.UUID, event_type: str) -> None:
    try:
        emit_batch_event(services, batch_id, event_type)
    except Exception:  # noqa: BLE001 - a webhook problem must not fail the batch that triggered it
        log.warning("could not queue the %s webhooks of batch %s", event_type, batch_id, exc_info=True)
