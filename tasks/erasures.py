"""Erasures of a subject, run on the `maintenance` queue in chunks (``db.erasures``).

Delivery is acks-late and each chunk commits with its own progress, so a worker killed mid-way
leaves a message the broker hands out again and the rest is erased then; the beat sweep
:func:`resume_erasures` also sends again any erasure left unfinished for a while (a lost
message, a publish that failed). Database and Redis outages retry declaratively. A chunk's
cache entries are removed before it commits (a Redis failure rolls it back, to be retried);
its media files after, and a file left by a worker killed in between goes with the orphan sweep.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import shared_task

from db.erasures import erase_chunk, unfinished_erasures
from db.media import discard_many
from db.models import utcnow
from db.result_cache_keys import forget_jobs
from tasks.enqueue import ERASE_SUBJECT_TASK, enqueue_erasure
from tasks.maintenance import RETRY_OPTIONS
from tasks.services import Services, current

log = logging.getLogger(__name__)

#: An erasure still unfinished this long after it was requested is sent again by the sweep.
RESUME_AFTER = timedelta(seconds=60)


@shared_task(name=ERASE_SUBJECT_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def erase_subject(erasure_id: str) -> int:
    """Run an erasure to its end; returns the jobs this run removed."""
    return erase(current(), uuid.UUID(erasure_id))


def erase(services: Services, erasure_id: uuid.UUID) -> int:
    settings = services.settings
    jobs = 0
    while True:
        with services.session() as session:
            chunk = erase_chunk(session, erasure_id, settings.erasure_chunk_size)
            if chunk.removed.job_ids:
                forget_jobs(services.redis, chunk.removed.job_ids)
        discard_many(settings, chunk.removed.audio_job_ids)
        jobs += chunk.removed.jobs
        if chunk.done:
            log.info("erasure %s finished: %d jobs removed by this run", erasure_id, jobs)
            return jobs


@shared_task(name="tasks.erasures.resume_erasures", **RETRY_OPTIONS)
def resume_erasures() -> int:
    services = current()
    with services.session() as session:
        pending = unfinished_erasures(session, utcnow() - RESUME_AFTER)
    return sum(enqueue_erasure(services.celery, erasure_id) for erasure_id in pending)
