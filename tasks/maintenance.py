"""Housekeeping run by celery beat: nothing accepted is lost when the broker loses messages."""
from __future__ import annotations

import logging

from celery import Celery, shared_task

from config.settings import Settings
from db.jobs import mark_enqueued, stale_jobs, unfinished_job_ids
from db.media import files_older_than
from db.session import session_scope
from tasks.enqueue import enqueue_job
from tasks.services import current

log = logging.getLogger(__name__)


@shared_task(name="tasks.maintenance.requeue_stale_jobs")
def requeue_stale_jobs() -> int:
    """Publish again jobs that were never published, or sat queued or running for too long.

    Redelivery is safe: a job is claimed and finished by conditional updates, so a duplicate
    message for a job that is in fact running or done writes nothing.
    """
    services = current()
    return requeue_stale(services.settings, services.celery)


def requeue_stale(settings: Settings, celery: Celery) -> int:
    running_stale_after_s = settings.broker_visibility_timeout_s * 2
    with session_scope(settings.database_url) as session:
        jobs = stale_jobs(session, settings.requeue_after_s, running_stale_after_s,
                          settings.requeue_unpublished_after_s)
    sent = [job_id for job_id, job_type in jobs if enqueue_job(celery, job_id, job_type)]
    if sent:
        with session_scope(settings.database_url) as session:
            mark_enqueued(session, sent)
        log.info("requeued %d stale jobs", len(sent))
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
