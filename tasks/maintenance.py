"""Housekeeping run by celery beat on the `maintenance` queue: nothing accepted is lost when the broker loses messages.

A broker that restarted without its data (Redis killed, no append-only file) lost every message
it held, and nothing tells the jobs' rows so: they look like jobs waiting in a long queue. So
each sweep keeps a marker in the broker's Redis; a sweep that finds it missing knows the broker
lost its data since the last sweep (or that it is the first sweep ever) and sends every queued
job again at once, without waiting ``requeue_after_s``. Sending twice is harmless: a job is
claimed and finished by conditional updates, so a duplicate message writes nothing.

The sweeps retry on database and broker errors (declaratively, :data:`RETRY_OPTIONS`): one that
runs during an outage tries again soon instead of waiting for the next beat.
"""
from __future__ import annotations

import logging

import redis
from celery import Celery, shared_task
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from config.settings import Settings
from db.jobs import mark_enqueued, queued_jobs_sent_before, stale_jobs, unfinished_job_ids
from db.media import files_older_than
from db.models import utcnow
from db.session import session_scope
from tasks.enqueue import enqueue_job, forget_declared_queues, model_of
from tasks.services import current

log = logging.getLogger(__name__)

#: Celery's declarative retries for a sweep that met a database or broker outage.
RETRY_OPTIONS = {"autoretry_for": (OperationalError, redis.ConnectionError, redis.TimeoutError, BrokerError),
                 "retry_backoff": 1, "retry_backoff_max": 10, "retry_jitter": False, "max_retries": 8}
MARKER_KEY = "samo:broker-marker:{}"
#: Jobs sent per round trip of a sweep.
SWEEP_LIMIT = 500


class BrokerMarker:
    """A key a sweep leaves in the broker's Redis: while it is there, the broker has kept its data."""

    def __init__(self, broker_url: str, sweep: str) -> None:
        self.key = MARKER_KEY.format(sweep)
        self.client = (redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
                       if broker_url.startswith(("redis://", "rediss://", "unix://")) else None)

    def data_lost(self) -> bool:
        """True when the marker is gone; never for a broker that is not Redis (nothing to tell)."""
        return self.client is not None and not self.client.exists(self.key)

    def leave(self) -> None:
        if self.client is not None:
            self.client.set(self.key, utcnow().isoformat())


@shared_task(name="tasks.maintenance.requeue_stale_jobs", **RETRY_OPTIONS)
def requeue_stale_jobs() -> int:
    """Publish again jobs whose message was lost: every queued one after the broker lost its
    data, otherwise those never published or queued or running for too long."""
    services = current()
    return requeue_stale(services.settings, services.celery)


def requeue_stale(settings: Settings, celery: Celery) -> int:
    marker = BrokerMarker(settings.celery_broker_url, "jobs")
    sent = 0
    if marker.data_lost():
        sent += requeue_queued_before(settings, celery)
        marker.leave()
    running_stale_after_s = settings.broker_visibility_timeout_s * 2
    with session_scope(settings.database_url) as session:
        jobs = stale_jobs(session, settings.requeue_after_s, running_stale_after_s,
                          settings.requeue_unpublished_after_s)
    sent += send_again(settings, celery, jobs)
    if sent:
        log.info("requeued %d stale jobs", sent)
    return sent


def requeue_queued_before(settings: Settings, celery: Celery) -> int:
    """Every job queued now, whatever its age: the broker holds none of their messages (nor the
    queues' bindings, declared again with the first message)."""
    forget_declared_queues(celery)
    cutoff = utcnow()
    sent = 0
    while True:
        with session_scope(settings.database_url) as session:
            jobs = queued_jobs_sent_before(session, cutoff, SWEEP_LIMIT)
        published = send_again(settings, celery, jobs)
        sent += published
        if len(jobs) < SWEEP_LIMIT or published < len(jobs):
            break
    log.info("the broker lost its data: sent %d queued jobs again", sent)
    return sent


def send_again(settings: Settings, celery: Celery, jobs) -> int:
    """Publish each job's message and stamp the ones that went out; raises if the broker is gone."""
    sent = [job_id for job_id, job_type, options in jobs
            if enqueue_job(celery, job_id, job_type, model=model_of(options))]
    if len(sent) < len(jobs):
        raise BrokerError(f"{len(jobs) - len(sent)} of {len(jobs)} stale jobs could not be published")
    if sent:
        with session_scope(settings.database_url) as session:
            mark_enqueued(session, sent)
    return len(sent)


@shared_task(name="tasks.maintenance.sweep_orphan_media")
def sweep_orphan_media() -> int:
    """Delete uploads nobody will read: older than ``media_ttl_s`` and not of an unfinished job.

    Workers delete a job's file when it ends and cancel deletes it too; this catches the rest
    (an API process that died between storing a file and committing its job, a worker killed
    after storing the result). Files of queued or running jobs are kept however old they are.
    """
    return sweep_orphans(current().settings)


def sweep_orphans(settings: Settings) -> int:
    old = files_older_than(settings, settings.media_ttl_s)
    if not old:
        return 0
    with session_scope(settings.database_url) as session:
        keep = unfinished_job_ids(session, {f.job_id for f in old if f.job_id is not None})
    removed = 0
    for stored in old:
        if stored.job_id not in keep:
            stored.path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d orphaned media files", removed)
    return removed
