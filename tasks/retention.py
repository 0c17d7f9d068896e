"""The retention sweep, sent by beat to the `retention` queue (``SAMO_RETENTION_INTERVAL_S``).

Each run deletes the jobs whose ``purge_after`` had passed when it started (``db.retention``),
``SAMO_RETENTION_CHUNK_SIZE`` per transaction, so a large backlog never holds one long
transaction or lock; the media files of deleted audio jobs go after each commit. A run that
stops half way (a killed worker, an outage) leaves whole chunks behind, and the next run
takes them: deleting is idempotent. Its own queue and worker keep it from ever delaying the
requeue sweeps on `maintenance`.
"""
from __future__ import annotations

import logging

from celery import shared_task

from config.job_types import audio_types
from db.media import discard
from db.models import utcnow
from db.retention import purge_expired
from tasks.maintenance import RETRY_OPTIONS
from tasks.services import current

log = logging.getLogger(__name__)


@shared_task(name="tasks.retention.purge_expired_jobs", **RETRY_OPTIONS)
def purge_expired_jobs() -> int:
    """Delete every job past its retention, a chunk per transaction; returns how many."""
    services = current()
    settings = services.settings
    cutoff = utcnow()
    deleted = deliveries = 0
    while True:
        with services.session() as session:
            purged = purge_expired(session, cutoff, settings.retention_chunk_size, audio_types())
        for job_id in purged.audio_jobs:
            discard(settings, job_id)
        deleted += len(purged.jobs)
        deliveries += purged.deliveries
        if len(purged.jobs) < settings.retention_chunk_size:
            break
    if deleted:
        log.info("retention: deleted %d jobs past their date (%d webhook deliveries)", deleted, deliveries)
    return deleted
