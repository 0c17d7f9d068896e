"""Erasures of a subject, run on the `maintenance` queue in chunks (``db.erasures``).

Delivery is acks-late and each chunk commits with its own progress, so a worker killed mid-way
leaves a message the broker hands out again and the rest is erased then; the beat sweep
:func:`resume_erasures` also sends again any erasure left unfinished for a while (a lost
message, a publish that failed). Database and Redis outages retry declaratively.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import shared_task

from db.erasures import run_erasure, unfinished_erasures
from db.models import utcnow
from tasks.enqueue import ERASE_SUBJECT_TASK, enqueue_erasure
from tasks.maintenance import RETRY_OPTIONS
from tasks.services import current

log = logging.getLogger(__name__)

#: An erasure still unfinished this long after it was requested is sent again by the sweep.
RESUME_AFTER = timedelta(seconds=60)


@shared_task(name=ERASE_SUBJECT_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def erase_subject(erasure_id: str) -> int:
    """Run an erasure to its end; returns the jobs this run removed."""
    services = current()
    jobs = run_erasure(services.settings, services.redis, uuid.UUID(erasure_id))
    log.info("erasure %s finished: %d jobs removed by this run", erasure_id, jobs)
    return jobs


@shared_task(name="tasks.erasures.resume_erasures", **RETRY_OPTIONS)
def resume_erasures() -> int:
    services = current()
    with services.session() as session:
        pending = unfinished_erasures(session, utcnow() - RESUME_AFTER)
    return sum(enqueue_erasure(services.celery, erasure_id) for erasure_id in pending)
