"""One Celery task per registered job type, made from its registry entry (``config.job_types``).

A batched type's task takes batches of messages (``workers.batching``), each message carrying
one or more job ids; any other type's task takes the ids of one message. Both hand the jobs to
the one job lifecycle (``tasks.lifecycle``). Retries on a database outage are declared once:
a plain task retries with Celery's exponential backoff and jitter; a batch hands its messages
back to the queue after a pause (celery-batches tasks cannot retry themselves).
"""
from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task
from sqlalchemy.exc import OperationalError

from config import tracing
from config.job_types import JOB_TYPES, JobType
from tasks.lifecycle import run_jobs
from tasks.services import current
from workers.batching import JobBatches

log = logging.getLogger(__name__)

#: A batch that found the database unreachable waits this long before its messages go back.
DATABASE_RETRY_DELAY_S = 2.0
#: Celery's declarative retries for a plain job task (the database was unreachable).
RETRY_OPTIONS = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_backoff_max": 30,
                 "retry_jitter": True, "max_retries": 5}


def job_ids_of(args) -> list[uuid.UUID]:
    return [uuid.UUID(job_id) for job_id in args]


def batched_task(job_type: JobType):
    @shared_task(base=JobBatches, name=job_type.task)
    def run_batch(requests) -> dict:
        services = current()
        queue = (requests[0].delivery_info or {}).get("routing_key") or job_type.queue_name(services.settings)
        job_ids = list(dict.fromkeys(job_id for request in requests for job_id in job_ids_of(request.args)))
        max_size, _ = services.settings.batch_policy(queue)
        try:
            with tracing.batch_span(job_type.name, queue, [request.request_dict for request in requests]):
                return run_jobs(services, job_type, job_ids, queue, max_size).as_dict()
        except OperationalError:
            log.warning("database unavailable for a batch of %d %s jobs; handing them back", len(job_ids),
                        job_type.name, exc_info=True)
            time.sleep(DATABASE_RETRY_DELAY_S)
            return {"requeue": True}

    return run_batch


def plain_task(job_type: JobType):
    @shared_task(bind=True, name=job_type.task, **RETRY_OPTIONS)
    def run(self, *job_ids: str) -> dict:
        services = current()
        queue = (self.request.delivery_info or {}).get("routing_key") or job_type.queue_name(services.settings)
        return run_jobs(services, job_type, job_ids_of(job_ids), queue).as_dict()

    return run


TASKS = {name: (batched_task if entry.batched else plain_task)(entry) for name, entry in JOB_TYPES.items()}
