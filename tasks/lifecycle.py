"""The life of every job in a worker: a single job is a batch of one.

:func:`run_jobs` claims the jobs of a message (or of a batch of messages) in one conditional
UPDATE, so a redelivered or canceled job is skipped; :func:`process_claimed` (shared with bulk
chunks) fails jobs that were started too often, runs the job type's handler on the others and
stores every outcome, with the jobs' webhook deliveries, in one transaction; after the commit
it tells waiting callers, publishes those deliveries (``tasks.events``), removes uploads
of jobs that ended and checks the subjects of stored results for shifts (``tasks.shift_events``).

A job that was already running when its worker died (``attempts`` > 1) runs alone, after the
others are stored: if it is what kills workers, it takes no other job down with it, and after
``MAX_ATTEMPTS`` starts it fails instead of running again. Every failure of the work itself
ends as a failed job with a stable code (:func:`failure_of`); only the database being
unreachable escapes, so the task is retried (``tasks.jobs``) with the uploads still in place.
"""
from __future__ import annotations

import functools
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from config import error_tracking, tracing
from config.job_types import JobType
from db.jobs import ClaimedJob, JobOutcome, claim_jobs, complete_jobs, fail_job
from db.media import discard
from db.models import Job
from tasks.events import jobs_finished
from tasks.live_events import publish_statuses
from tasks.services import Services
from tasks.shift_events import check_shifts
from tasks.webhook_events import stage_job_events

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class JobFailure(Exception):
    """A failure the work reports on purpose, with the code and message the job will show."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class BatchReport:
    """What a batch did, returned to the worker's main process for its metrics."""

    queue: str
    type: str = "emotion"
    #: Tell waiters and webhooks about each stored job. Batch items have neither (``Prefer: wait``
    #: and job webhooks are for interactive jobs; a batch announces itself as a whole).
    announce_jobs: bool = True
    #: Jobs per forward pass of the largest pass size a handler may use.
    max_size: int = 1
    passes: list[int] = field(default_factory=list)
    inference_s: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    statuses: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"queue": self.queue, "type": self.type, "passes": self.passes, "inference_s": self.inference_s,
                "cache_hits": self.cache_hits, "cache_misses": self.cache_misses, "statuses": dict(self.statuses)}


#: A handler runs claimed jobs of its type and returns an outcome or a failure per job, in order.
Handler = Callable[[Services, list[ClaimedJob], BatchReport], list["JobOutcome | JobFailure"]]


def per_job(work: Callable[[Services, ClaimedJob], JobOutcome]) -> Handler:
    """A handler that runs ``work`` job by job; an error fails its own job only."""
    @functools.wraps(work)
    def handler(services: Services, jobs: list[ClaimedJob], report: BatchReport) -> list[JobOutcome | JobFailure]:
        outcomes: list[JobOutcome | JobFailure] = []
        for job in jobs:
            try:
                outcomes.append(work(services, job))
            except OperationalError:
                raise
            except Exception as error:  # noqa: BLE001 - a model failure belongs on the job, not in a crash loop
                outcomes.append(failure_of(error, job))
        return outcomes

    return handler


def failure_of(error: Exception, job: ClaimedJob | None = None) -> JobFailure:
    """The code and message a job shows for an error of its work.

    Errors that carry their own stable ``code`` (``JobFailure``, transcription and summariser
    errors) keep it; a ``ValueError`` is bad input; anything else is a model failure, logged.
    """
    if isinstance(error, JobFailure):
        return error
    code = getattr(error, "code", None)
    if isinstance(code, str):
        return JobFailure(code, getattr(error, "message", None) or str(error))
    if isinstance(error, ValueError):
        return JobFailure("invalid_input", str(error))
    log.error("%s job %s failed", job.type if job else "a", job.id if job else "", exc_info=error)
    return JobFailure("inference_error", f"The model failed: {type(error).__name__}: {error}")


def run_jobs(services: Services, job_type: JobType, job_ids: list[uuid.UUID], queue: str,
             max_size: int = 1) -> BatchReport:
    """Claim and run the jobs of one message or batch of messages."""
    with services.session() as session:
        jobs = claim_jobs(session, Job.id.in_(job_ids))
    tracing.set_job_attributes(job_ids, {job.tenant_id for job in jobs})
    publish_statuses(services.redis, services.settings, [job.id for job in jobs], "running")
    skipped = set(job_ids) - {job.id for job in jobs}
    if skipped:
        log.info("%d of %d %s jobs finished, canceled or unknown; skipped", len(skipped), len(job_ids),
                 job_type.name)
        if job_type.audio:
            for job_id in skipped:
                discard(services.settings, job_id)
    report = BatchReport(queue, type=job_type.name, max_size=max_size)
    process_claimed(services, job_type, jobs, report)
    return report


def process_claimed(services: Services, job_type: JobType, jobs: list[ClaimedJob],
                    report: BatchReport) -> list[ClaimedJob]:
    """Run and store claimed jobs; returns those whose terminal state this call stored."""
    exhausted = [job for job in jobs if job.attempts > MAX_ATTEMPTS]
    stored = store(services, [(job, JobFailure("too_many_attempts",
                                                f"The job was started {MAX_ATTEMPTS} times without finishing."))
                              for job in exhausted], report)
    runnable = [job for job in jobs if job.attempts <= MAX_ATTEMPTS]
    first_tries = [job for job in runnable if job.attempts <= 1]
    retried = [job for job in runnable if job.attempts > 1]
    handler = job_type.load_handler()
    for group in ([first_tries] if first_tries else []) + [[job] for job in retried]:
        with error_tracking.handling(job.input.get("text") for job in group if isinstance(job.input, dict)):
            outcomes = handler(services, group, report)
        stored += store(services, list(zip(group, outcomes)), report)
    return stored


def store(services: Services, outcomes: list[tuple[ClaimedJob, JobOutcome | JobFailure]],
          report: BatchReport) -> list[ClaimedJob]:
    """Store outcomes in one transaction, each only if its job still runs; then announce them."""
    if not outcomes:
        return []
    successes = [(job, outcome) for job, outcome in outcomes if isinstance(outcome, JobOutcome)]
    failures = [(job, outcome) for job, outcome in outcomes if isinstance(outcome, JobFailure)]
    for job, failure in failures:
        log.info("%s job %s failed: %s", job.type, job.id, failure.code)
    with services.session() as session:
        succeeded = complete_jobs(session, successes)
        failed = [job for job, failure in failures if fail_job(session, job, failure.code, failure.message)]
        deliveries = ({status: stage_job_events(services.settings, session, [job.id for job in jobs], status)
                       for status, jobs in (("succeeded", succeeded), ("failed", failed))}
                      if report.announce_jobs else {})
    discarded = len(outcomes) - len(succeeded) - len(failed)
    if discarded:
        log.info("%d jobs finished elsewhere or were canceled; their outcomes were discarded", discarded)
    for job, _ in outcomes:
        if "audio" in job.input:
            discard(services.settings, job.id)
    if report.announce_jobs:
        jobs_finished(services, [job.id for job in succeeded], "succeeded", deliveries["succeeded"])
        jobs_finished(services, [job.id for job in failed], "failed", deliveries["failed"])
    check_shifts(services, succeeded)
    report.statuses["succeeded"] += len(succeeded)
    report.statuses["failed"] += len(failed)
    return succeeded + failed
