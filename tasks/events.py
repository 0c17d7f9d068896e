"""What workers tell the API through Redis: a job reached a terminal state, a worker's models are loaded.

Whoever stores a terminal state stages the job's webhook deliveries in the same transaction
(``tasks.webhook_events.stage_job_events``), then calls ``job_finished`` after the commit; this is
the one place where follow-up work hangs (a Redis notification for callers waiting on the job,
publishing those deliveries, the jobs' live ``status`` events, ``tasks.live_events``).

A worker process that loaded its models at start says so in :func:`models_loaded`; ``/readyz``
reads :func:`workers_with_models` for the workers that answered its broadcast, so a worker that
is up but still loading is not counted as ready.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence

import redis

from tasks.live_events import publish_statuses
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
    publish_statuses(services.redis, services.settings, job_ids, status)
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


#: One hash per worker (its Celery hostname): a field per pool process that loaded its models.
MODELS_LOADED_KEY = "samo:workers:models-loaded:{}"
#: Only a clean-up for hostnames never used again: liveness comes from the broadcast.
MODELS_LOADED_TTL_S = 7 * 24 * 3600


def models_loading(services: Services, hostname: str) -> None:
    """A worker starts: what an earlier run under the same hostname reported no longer holds."""
    try:
        services.redis.delete(MODELS_LOADED_KEY.format(hostname))
    except redis.RedisError:
        log.warning("could not reset the model readiness of %s", hostname, exc_info=True)


def models_loaded(services: Services, hostname: str, process: int, models: Sequence[str]) -> None:
    """A pool process of ``hostname`` has loaded ``models`` (possibly none: nothing to preload)."""
    key = MODELS_LOADED_KEY.format(hostname)
    try:
        with services.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, str(process), json.dumps(sorted(models)))
            pipe.expire(key, MODELS_LOADED_TTL_S)
            pipe.execute()
    except redis.RedisError:
        log.warning("could not report the models of %s as loaded", hostname, exc_info=True)


def process_stopped(services: Services, hostname: str, process: int) -> None:
    try:
        services.redis.hdel(MODELS_LOADED_KEY.format(hostname), str(process))
    except redis.RedisError:
        log.warning("could not withdraw the model readiness of %s", hostname, exc_info=True)


def workers_with_models(client: redis.Redis, hostnames: Iterable[str]) -> dict[str, list[str]]:
    """The models loaded by each of ``hostnames`` that has a pool process with its models ready."""
    hostnames = list(hostnames)
    with client.pipeline(transaction=False) as pipe:
        for hostname in hostnames:
            pipe.hvals(MODELS_LOADED_KEY.format(hostname))
        replies = pipe.execute()
    return {hostname: sorted({model for value in values for model in json.loads(value)})
            for hostname, values in zip(hostnames, replies, strict=True) if values}
