"""Job state transitions, written so that a redelivered task can never write twice.

Every transition is a single conditional UPDATE: a job is claimed only while unfinished, and
finished only while running, so a duplicate delivery, a late worker or a cancel that raced a
worker all resolve to exactly one terminal state and at most one stored result.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.models import UNFINISHED_STATUSES, EmotionScore, Job, JobStatus, utcnow
from db.rollups import ScoredEntry, add_results
from db.score_only import keeps_input, stored_result


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    tenant_id: uuid.UUID
    type: str
    input: dict
    options: dict
    attempts: int
    started_at: datetime
    subject: str | None = None
    occurred_at: datetime | None = None


@dataclass
class JobOutcome:
    """What a succeeded job stores: its result, the model that made it and, when the result holds
    an emotion analysis of the whole input, that analysis (stored as per-label score rows too)."""

    result: dict
    model_name: str | None = None
    model_version: str | None = None
    emotion: dict | None = None


def claim_jobs(session: Session, *criteria) -> list[ClaimedJob]:
    """Mark every unfinished job matching ``criteria`` running, in one UPDATE (the jobs of a
    message or batch of messages, a bulk chunk); finished and canceled jobs are left out."""
    now = utcnow()
    rows = session.execute(
        update(Job)
        .where(Job.status.in_(UNFINISHED_STATUSES), *criteria)
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_at=func.coalesce(Job.started_at, now))
        .returning(Job.id, Job.tenant_id, Job.type, Job.input, Job.options, Job.attempts, Job.started_at,
                   Job.subject, Job.occurred_at)
        .execution_options(synchronize_session=False)
    ).all()
    return [ClaimedJob(*row) for row in rows]


def complete_jobs(session: Session, outcomes: list[tuple[ClaimedJob, JobOutcome]]) -> list[ClaimedJob]:
    """Store many results, their emotion scores and their rollups (``db.rollups``) in one transaction,
    each only if its job still runs.

    Returns the jobs stored; one canceled or finished elsewhere meanwhile is left out. A bulk
    chunk stores hundreds of results at a time, so on PostgreSQL one UPDATE finishes them all
    and, for results that are themselves an emotion analysis, one INSERT .. SELECT derives the
    score rows from the stored results inside the database; elsewhere (SQLite) it is one UPDATE
    per job and the rows are built here.
    """
    if not outcomes:
        return []
    outcomes = [(job, kept_outcome(job, outcome)) for job, outcome in outcomes]
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        stored_ids = _finish_many_postgresql(session, outcomes, now)
        stored = [(job, outcome) for job, outcome in outcomes if job.id in stored_ids]
        derived = [job.id for job, outcome in stored if outcome.emotion is outcome.result]
        if derived:
            session.execute(INSERT_SCORES_FROM_RESULTS, {"job_ids": [str(job_id) for job_id in derived],
                                                         "created_at": now})
        built = [(job, outcome) for job, outcome in stored
                 if outcome.emotion is not None and outcome.emotion is not outcome.result]
    else:
        stored = [(job, outcome) for job, outcome in outcomes
                  if _finish(session, job.id, JobStatus.SUCCEEDED, job.started_at, result=outcome.result,
                             model_name=outcome.model_name, model_version=outcome.model_version,
                             **dropped_input(job))]
        built = [(job, outcome) for job, outcome in stored if outcome.emotion is not None]
    scores = [row for job, outcome in built for row in emotion_score_values(job, outcome.emotion, now)]
    if scores:
        session.execute(insert(EmotionScore), scores)
    add_results(session, [ScoredEntry(job.tenant_id, job.subject, job.occurred_at or job.started_at, outcome.emotion)
                          for job, outcome in stored if outcome.emotion is not None])
    return [job for job, _ in stored]


def kept_outcome(job: ClaimedJob, outcome: JobOutcome) -> JobOutcome:
    """The outcome as the job stores it: without any text in score-only mode (``db.score_only``)."""
    result = stored_result(outcome.result, job.options, job.input)
    if result is outcome.result:
        return outcome
    emotion = result if outcome.emotion is outcome.result else outcome.emotion
    return JobOutcome(result, outcome.model_name, outcome.model_version, emotion=emotion)


def dropped_input(job: ClaimedJob) -> dict:
    """The column values that drop a score-only job's input as it finishes (JSON null)."""
    return {} if keeps_input(job.options) else {"input": None}


# One JSON parameter for all the results: the statement text never changes, whatever the batch size.
FINISH_MANY = text("""
    UPDATE jobs SET status = 'succeeded', finished_at = :now, result = finished.result,
           input = CASE WHEN finished.drop_input THEN CAST('null' AS JSONB) ELSE jobs.input END,
           processing_ms = CAST(EXTRACT(EPOCH FROM (:now - jobs.started_at)) * 1000 AS INTEGER),
           model_name = finished.model_name, model_version = finished.model_version
    FROM jsonb_to_recordset(CAST(:finished AS JSONB))
         AS finished(id UUID, result JSONB, model_name TEXT, model_version TEXT, drop_input BOOLEAN)
    WHERE jobs.id = finished.id AND jobs.status = 'running'
    RETURNING jobs.id
""")

# The rows emotion_score_values builds, computed from the emotion results just stored.
INSERT_SCORES_FROM_RESULTS = text("""
    INSERT INTO emotion_scores (job_id, tenant_id, label, probability, is_top, above_threshold, created_at)
    SELECT jobs.id, jobs.tenant_id, scores.key, CAST(scores.value AS DOUBLE PRECISION),
           scores.key = jobs.result ->> 'top_emotion',
           COALESCE(jsonb_exists(jobs.result -> 'emotions', scores.key), FALSE), :created_at
    FROM jobs CROSS JOIN LATERAL jsonb_each_text(jobs.result -> 'probabilities') AS scores
    WHERE jobs.id = ANY(CAST(:job_ids AS UUID[]))
""")


def _finish_many_postgresql(session: Session, outcomes: list[tuple[ClaimedJob, JobOutcome]],
                            now: datetime) -> set[uuid.UUID]:
    finished = json.dumps([{"id": str(job.id), "result": outcome.result, "model_name": outcome.model_name,
                            "model_version": outcome.model_version, "drop_input": not keeps_input(job.options)}
                           for job, outcome in outcomes],
                          separators=(",", ":"))
    rows = session.execute(FINISH_MANY, {"now": now, "finished": finished})
    return {uuid.UUID(str(row[0])) for row in rows}


def emotion_score_values(job: ClaimedJob, result: dict, created_at: datetime) -> list[dict]:
    """One row per label of an emotion result, for one INSERT of many jobs' scores."""
    above = set(result.get("emotions", []))
    top = result.get("top_emotion")
    return [
        {"job_id": job.id, "tenant_id": job.tenant_id, "label": label, "probability": probability,
         "is_top": label == top, "above_threshold": label in above, "created_at": created_at}
        for label, probability in result.get("probabilities", {}).items()
    ]


def _finish(session: Session, job_id: uuid.UUID, status: JobStatus, started_at: datetime | None, **values) -> bool:
    now = utcnow()
    processing_ms = int((now - started_at).total_seconds() * 1000) if started_at else None
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(status=status, finished_at=now, processing_ms=processing_ms, **values)
    )
    return result.rowcount == 1


def fail_job(session: Session, job: ClaimedJob, code: str, message: str) -> bool:
    return _finish(session, job.id, JobStatus.FAILED, job.started_at, error_code=code, error_message=message,
                   **dropped_input(job))


def fail_unclaimed_job(session: Session, job_id: uuid.UUID, code: str, message: str) -> bool:
    """Fail a job without running it (for example one that exhausted its attempts)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED_STATUSES))
        .values(status=JobStatus.FAILED, finished_at=utcnow(), error_code=code, error_message=message)
    )
    return result.rowcount == 1


def cancel_job(session: Session, job_id: uuid.UUID, drop_input: bool = False) -> bool:
    """``drop_input``: a score-only job's (``db.score_only``) goes with the cancel."""
    dropped = {"input": None} if drop_input else {}
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED_STATUSES))
        .values(status=JobStatus.CANCELED, finished_at=utcnow(), **dropped)
    )
    return result.rowcount == 1


def mark_enqueued(session: Session, job_ids: list[uuid.UUID]) -> None:
    session.execute(update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=utcnow()))


def mark_unpublished(session: Session, job_id: uuid.UUID) -> None:
    """Undo an optimistic ``enqueued_at`` so the requeue sweep publishes the job soon."""
    session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=None))


def stale_condition(requeue_after_s: float | None, running_stale_after_s: float,
                    unpublished_after_s: float = 30):
    """A job whose broker message may have been lost: never enqueued, or waiting or running for too long.

    ``requeue_after_s`` None leaves out jobs that wait with a message sent (their queue is known
    to be moving).
    """
    now = utcnow()
    conditions = [
        and_(Job.status == JobStatus.QUEUED, Job.enqueued_at.is_(None),
             Job.created_at < now - timedelta(seconds=unpublished_after_s)),
        and_(Job.status == JobStatus.RUNNING,
             Job.started_at < now - timedelta(seconds=running_stale_after_s)),
    ]
    if requeue_after_s is not None:
        conditions.append(and_(Job.status == JobStatus.QUEUED,
                               Job.enqueued_at < now - timedelta(seconds=requeue_after_s)))
    return or_(*conditions)


def stale_jobs(session: Session, requeue_after_s: int, running_stale_after_s: int,
               unpublished_after_s: float = 30, limit: int = 500):
    """Stale jobs sent one message each; batch items travel in chunks (``db.batches.stale_chunks``)."""
    return session.execute(
        select(Job.id, Job.type, Job.options)
        .where(Job.batch_id.is_(None),
               stale_condition(requeue_after_s, running_stale_after_s, unpublished_after_s))
        .order_by(Job.created_at)
        .limit(limit)
    ).all()


def queued_jobs_sent_before(session: Session, cutoff: datetime, limit: int = 500):
    """Interactive jobs still queued whose message, if any, was sent before ``cutoff``: those a
    broker that lost its data since then no longer holds (``tasks.maintenance``)."""
    return session.execute(
        select(Job.id, Job.type, Job.options)
        .where(Job.batch_id.is_(None), Job.status == JobStatus.QUEUED,
               or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff))
        .order_by(Job.created_at)
        .limit(limit)
    ).all()


def unfinished_job_ids(session: Session, job_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``job_ids`` that are still queued or running."""
    if not job_ids:
        return set()
    return set(session.scalars(
        select(Job.id).where(Job.id.in_(job_ids), Job.status.in_(UNFINISHED_STATUSES))
    ))


def job_by_idempotency_key(session: Session, tenant_id: uuid.UUID, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key))


def tenant_jobs_query(tenant_id: uuid.UUID, statuses=(), job_type: str | None = None,
                      batch_id: uuid.UUID | None = None, interactive_only: bool = False, subject: str | None = None,
                      occurred_after: datetime | None = None, occurred_before: datetime | None = None):
    """The tenant's jobs, narrowed by status, type, batch (``interactive_only``: no batch items),
    subject and when their entries occurred (``occurred_after`` inclusive, ``occurred_before`` not)."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    if subject is not None:
        query = query.where(Job.subject == subject)
    if occurred_after is not None:
        query = query.where(Job.occurred_at >= occurred_after)
    if occurred_before is not None:
        query = query.where(Job.occurred_at < occurred_before)
    if statuses:
        query = query.where(Job.status.in_(statuses))
    if job_type:
        query = query.where(Job.type == job_type)
    if batch_id is not None:
        query = query.where(Job.batch_id == batch_id)
    if interactive_only:
        query = query.where(Job.batch_id.is_(None))
    return query


def job_status(session: Session, job_id: uuid.UUID) -> JobStatus | None:
    return session.scalar(select(Job.status).where(Job.id == job_id))


#: Every column of a job under its attribute's name, by id: the statement built once, so its
#: compiled form is cached and reused.
_JOB_COLUMNS = select(*(attribute.columns[0].label(attribute.key) for attribute in sa_inspect(Job).column_attrs))
_JOB_BY_ID = _JOB_COLUMNS.where(Job.id == bindparam("job_id"))
_STATUS_BY_ID = select(Job.status).where(Job.id == bindparam("job_id"))


def _read_committed(engine: Engine, statement, job_id: uuid.UUID):
    """One statement outside any transaction: no BEGIN before it and no ROLLBACK after it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return connection.execute(statement, {"job_id": job_id}).first()


def read_job(engine: Engine, job_id: uuid.UUID) -> SimpleNamespace | None:
    """The stored job as a plain object with a ``Job``'s attributes (enough for
    ``db.documents.job_document``), read in one SELECT without the ORM; None if there is none."""
    row = _read_committed(engine, _JOB_BY_ID, job_id)
    return None if row is None else SimpleNamespace(**row._mapping)


def read_job_status(engine: Engine, job_id: uuid.UUID) -> JobStatus | None:
    """``job_status`` in one SELECT outside any transaction."""
    row = _read_committed(engine, _STATUS_BY_ID, job_id)
    return None if row is None else row[0]
