"""Sending jobs to the broker by task name: the API enqueues without importing any worker code."""
from __future__ import annotations

import logging
import uuid

from celery import Celery

log = logging.getLogger(__name__)

TASK_BY_JOB_TYPE = {
    "emotion": "tasks.emotion.analyze_job",
    "summarize": "tasks.summarize.summarize_job",
    "transcribe": "tasks.speech.transcribe_job",
    "analyze": "tasks.analyze.analyze_job",
}

# Fail fast when the broker is down: the job is already stored and the requeue sweep sends it later.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


BULK_CHUNK_TASK = "tasks.bulk.process_chunk"


def enqueue_chunk(celery: Celery, batch_id: uuid.UUID, rows: list[int]) -> bool:
    """Publish one chunk of a batch (its items' row numbers) to the `bulk` queue; False if the broker failed."""
    try:
        celery.send_task(BULK_CHUNK_TASK, args=[str(batch_id), rows], retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:  # noqa: BLE001 - the items stay stored; the stale-chunk sweep sends them later
        log.warning("could not enqueue a chunk of batch %s; the sweep will send it", batch_id, exc_info=True)
        return False
    return True


def enqueue_job(celery: Celery, job_id: uuid.UUID, job_type: str) -> bool:
    """Publish one job; False (logged) if the broker could not be reached."""
    try:
        celery.send_task(
            TASK_BY_JOB_TYPE[job_type], args=[str(job_id)], retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception:  # noqa: BLE001 - any broker failure leaves the stored job for the sweep
        log.warning("could not enqueue job %s; the requeue sweep will send it", job_id, exc_info=True)
        return False
    return True
