"""`Prefer: wait=N` (RFC 7240) on job submission: answer with the result if it comes within N seconds.

The request waits for the job's completion message (published by ``tasks.events.job_finished``)
through its process's one subscription (``api.fastpath.completions``), not on the database, until the
message or the deadline. Whatever happens it reads the stored job once more and answers 200 with
the finished job, or the usual 202. Those reads are single SELECTs outside any transaction
(``db.jobs.read_job``): no ORM session, no BEGIN and no ROLLBACK for a request that only waited.

A waiting request costs a greenlet in the API's gevent workers (``scripts/gunicorn.conf.py``),
so many callers may wait at once; with ``GUNICORN_WORKER_CLASS=gthread`` each holds a thread,
and ``GUNICORN_THREADS`` bounds how many can wait. Keep ``GUNICORN_TIMEOUT`` above
``MAX_WAIT_S``; for long jobs, webhooks are the better tool.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from flask import request

from api.extensions import completion_listener, services
from db.jobs import read_job, read_job_status
from db.models import TERMINAL_STATUSES, Job

MAX_WAIT_S = 60
_WAIT_PREFERENCE = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def requested_wait_s(header: str | None) -> int | None:
    """Seconds asked for with ``Prefer: wait=N``, capped at ``MAX_WAIT_S``; None when not asked."""
    if not header:
        return None
    match = _WAIT_PREFERENCE.search(header)
    if match is None:
        return None
    return min(int(match.group(1)), MAX_WAIT_S)


def job_is_finished(job_id: uuid.UUID) -> bool:
    # Outside a transaction: no pooled connection sits idle in one while we wait.
    return read_job_status(services().engine, job_id) in TERMINAL_STATUSES


def respond_when_finished(job: Job, accepted: Callable[[Job], tuple]) -> tuple:
    """The submission's answer, after waiting as ``Prefer: wait`` asked (if it did)."""
    wait_s = requested_wait_s(request.headers.get("Prefer"))
    if wait_s is None:
        return accepted(job)
    if wait_s > 0:
        completion_listener().wait(job.id, job.created_at, wait_s, lambda: job_is_finished(job.id))
    job = read_job(services().engine, job.id) or job
    document, _status, headers = accepted(job)
    headers = {**headers, "Preference-Applied": f"wait={wait_s}", "Vary": "Prefer"}
    return document, 200 if job.status in TERMINAL_STATUSES else 202, headers
