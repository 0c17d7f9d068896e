"""Housekeeping run by celery beat: nothing accepted is lost when the broker loses messages."""
from __future__ import annotations

import logging

from db.jobs import mark_enqueued, stale_jobs
from db.session import session_scope
from tasks.enqueue import enqueue_job
from workers.celery_app import app, settings

log = logging.getLogger(__name__)


@app.task(name="tasks.maintenance.requeue_stale_jobs")
def requeue_stale_jobs() -> int:
    """Publish again jobs that were never published, or sat queued or running for too long.

    Redelivery is safe: a job is claimed and finished by conditional updates, so a duplicate
    message for a job that is in fact running or done writes nothing.
    """
    running_stale_after_s = settings.broker_visibility_timeout_s * 2
    with session_scope(settings.database_url) as session:
        jobs = stale_jobs(session, settings.requeue_after_s, running_stale_after_s)
    sent = [job_id for job_id, job_type in jobs if enqueue_job(app, job_id, job_type)]
    if sent:
        with session_scope(settings.database_url) as session:
            mark_enqueued(session, sent)
        log.info("requeued %d stale jobs", len(sent))
    return len(sent)
