"""Emotion analysis jobs, analysed in batches: claim many, one forward pass, store each result once.

Interactive jobs arrive on the model queue (`cpu` or `gpu`) in messages of one or more job ids
(the jobs an API process committed together share one, ``tasks.enqueue``); the worker gathers
messages into batches (``workers.batching``), and :func:`analyze_job` claims a batch's jobs
in one UPDATE, answers what it can from the result cache, runs the rest through the model in
length-sorted forward passes and stores every result in one transaction. Bulk chunks
(``tasks.bulk``) go through the same :func:`analyze_claimed`.

A job that was already running when its worker died (``attempts`` > 1) is analysed alone in a
pass of its own, after the others are stored: if it is what kills workers, it takes no other
job down with it, and after ``MAX_ATTEMPTS`` starts it fails instead of being run again.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from db.jobs import ClaimedJob, claim_jobs, complete_emotion_jobs, fail_job
from db.models import Job
from db.session import session_scope
from tasks.events import jobs_finished
from tasks.webhook_events import stage_job_events
from workers.batching import DynamicBatches, forward_passes
from workers.celery_app import app, settings
from workers.models import emotion_classifier
from workers.result_cache import result_cache

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# A batch that found the database unreachable waits this long before its messages go back.
DATABASE_RETRY_DELAY_S = 2.0


@dataclass
class BatchReport:
    """What a batch did, returned to the worker's main process for its metrics."""

    queue: str
    type: str = "emotion"
    #: Tell waiters and webhooks about each stored job. Batch items have neither (``Prefer: wait``
    #: and job webhooks are for interactive jobs; a batch announces itself as a whole).
    announce_jobs: bool = True
    passes: list[int] = field(default_factory=list)
    inference_s: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    statuses: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"queue": self.queue, "type": self.type, "passes": self.passes, "inference_s": self.inference_s,
                "cache_hits": self.cache_hits, "cache_misses": self.cache_misses, "statuses": dict(self.statuses)}


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


class EmotionBatches(DynamicBatches):
    abstract = True

    @staticmethod
    def jobs_in(request) -> int:
        return max(1, len(request.args or ()))


@app.task(base=EmotionBatches, name="tasks.emotion.analyze_job")
def analyze_job(requests) -> dict:
    """One batch of `analyze_job(*job_ids)` messages."""
    queue = (requests[0].delivery_info or {}).get("routing_key") or settings.model_queue
    job_ids = list(dict.fromkeys(uuid.UUID(job_id) for request in requests for job_id in request.args))
    try:
        return run_emotion_batch(job_ids, queue).as_dict()
    except OperationalError:
        log.warning("database unavailable for a batch of %d jobs; handing them back", len(job_ids), exc_info=True)
        time.sleep(DATABASE_RETRY_DELAY_S)
        return {"requeue": True}


def run_emotion_batch(job_ids: list[uuid.UUID], queue: str) -> BatchReport:
    with session_scope(settings.database_url) as session:
        jobs = claim_jobs(session, Job.id.in_(job_ids))
    if len(jobs) < len(job_ids):
        log.info("%d of %d jobs finished, canceled or unknown; skipped", len(job_ids) - len(jobs), len(job_ids))
    max_size, _ = settings.batch_policy(queue)
    report = BatchReport(queue)
    analyze_claimed(jobs, max_size, report)
    return report


def analyze_claimed(jobs: list[ClaimedJob], max_size: int, report: BatchReport) -> list[ClaimedJob]:
    """Analyse and store claimed jobs; returns those whose terminal state this call stored."""
    jobs = fail_exhausted(jobs, report)
    first_tries = [job for job in jobs if job.attempts <= 1]
    retried = [job for job in jobs if job.attempts > 1]
    stored = analyze_and_store(first_tries, max_size, report)
    for job in retried:
        stored += analyze_and_store([job], 1, report)
    return stored


def fail_exhausted(jobs: list[ClaimedJob], report: BatchReport) -> list[ClaimedJob]:
    exhausted = [job for job in jobs if job.attempts > MAX_ATTEMPTS]
    if exhausted:
        failures = [(job, Failure("too_many_attempts", f"The job was started {MAX_ATTEMPTS} times without finishing."))
                    for job in exhausted]
        store([], failures, None, report)
    return [job for job in jobs if job.attempts <= MAX_ATTEMPTS]


def analyze_and_store(jobs: list[ClaimedJob], max_size: int, report: BatchReport) -> list[ClaimedJob]:
    if not jobs:
        return []
    classifier = emotion_classifier(settings)
    texts = [job.input["text"] for job in jobs]
    cache = result_cache(settings, classifier)
    cached = cache.get_many(texts)
    misses = list(dict.fromkeys(text for text, hit in zip(texts, cached) if hit is None))
    report.cache_hits += sum(hit is not None for hit in cached)
    report.cache_misses += len(texts) - sum(hit is not None for hit in cached)

    started = time.perf_counter()
    fresh = infer(classifier, misses, max_size, report)
    elapsed = time.perf_counter() - started
    report.inference_s += elapsed

    answers = dict(zip(misses, fresh))
    successes, failures = [], []
    for job, text, hit in zip(jobs, texts, cached):
        outcome = {**hit, "cached": True} if hit is not None else answers[text]
        if isinstance(outcome, Failure):
            failures.append((job, outcome))
        else:
            successes.append((job, outcome if hit is not None else {**outcome, "cached": False}))
    stored = store(successes, failures, classifier, report)
    computed = [(text, outcome) for text, outcome in zip(misses, fresh) if isinstance(outcome, dict)]
    cache.put_many([text for text, _ in computed], [result for _, result in computed])
    log.info("emotion batch on %s: %d jobs, %d from cache, passes %s, %.0f ms model time", report.queue,
             len(jobs), len(jobs) - len(misses), report.passes[-8:], elapsed * 1000)
    return stored


def infer(classifier, texts: list[str], max_size: int, report: BatchReport) -> list[dict | Failure]:
    """A result or a Failure per text. A call that raises is retried text by text, so one bad text fails alone.

    Without a token budget one ``predict`` call takes every text: it sorts them by their exact
    token count and cuts passes of at most ``max_size`` where padding would cost more than
    another pass (``workers.emotion.passes``).
    """
    outcomes: list[dict | Failure | None] = [None] * len(texts)
    if settings.batch_max_tokens > 0:
        groups = forward_passes(texts, max_size, settings.batch_max_tokens, classifier.max_length)
    else:
        groups = [list(range(len(texts)))] if texts else []
    for indices in groups:
        batch = [texts[i] for i in indices]
        try:
            results = classifier.predict(batch, batch_size=max_size)
            report.passes.extend(classifier.last_pass_sizes)
        except Exception as error:  # noqa: BLE001 - isolate the text that fails
            results = [failure_from(error)] if len(batch) == 1 else [predict_one(classifier, text) for text in batch]
            report.passes.extend([1] * len(batch))
        for index, result in zip(indices, results):
            outcomes[index] = result
    return outcomes


def predict_one(classifier, text: str) -> dict | Failure:
    try:
        return classifier.predict([text], batch_size=1)[0]
    except Exception as error:  # noqa: BLE001 - reported on the job
        return failure_from(error)


def failure_from(error: Exception) -> Failure:
    if isinstance(error, ValueError):
        return Failure("invalid_input", str(error))
    log.error("emotion inference failed", exc_info=error)
    return Failure("inference_error", f"The emotion model failed: {type(error).__name__}.")


def store(successes: list[tuple[ClaimedJob, dict]], failures: list[tuple[ClaimedJob, Failure]], classifier,
          report: BatchReport) -> list[ClaimedJob]:
    """Store results and failures in one transaction, then tell waiters about each job stored."""
    with session_scope(settings.database_url) as session:
        succeeded = (complete_emotion_jobs(session, successes, classifier.name, classifier.version)
                     if successes else [])
        failed = [job for job, failure in failures if fail_job(session, job, failure.code, failure.message)]
        deliveries = {status: stage_job_events(settings, session, [job.id for job in jobs], status)
                      for status, jobs in (("succeeded", succeeded), ("failed", failed))} if report.announce_jobs else {}
    discarded = len(successes) + len(failures) - len(succeeded) - len(failed)
    if discarded:
        log.info("%d jobs finished elsewhere or were canceled; their results were discarded", discarded)
    if report.announce_jobs:
        jobs_finished(settings, [job.id for job in succeeded], "succeeded", deliveries["succeeded"])
        jobs_finished(settings, [job.id for job in failed], "failed", deliveries["failed"])
    report.statuses["succeeded"] += len(succeeded)
    report.statuses["failed"] += len(failed)
    return succeeded + failed
