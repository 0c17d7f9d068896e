"""Job state transitions, written so that a redelivered task can never write twice.

Every transition is a single conditional UPDATE: a job is claimed only while unfinished, and
finished only while running, so a duplicate delivery, a late worker or a cancel that raced a
worker all resolve to exactly one terminal state and at most one stored result.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import json

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from db.models import UNFINISHED_STATUSES, EmotionScore, Job, JobStatus, utcnow


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    tenant_id: uuid.UUID
    type: str
    input: dict
    options: dict
    attempts: int
    started_at: datetime


def claim_job(session: Session, job_id: uuid.UUID) -> ClaimedJob | None:
    """Mark a queued (or redelivered running) job as running; None if it is finished or gone."""
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED_STATUSES))
        .values(
            status=JobStatus.RUNNING,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
        )
        .returning(Job.id, Job.tenant_id, Job.type, Job.input, Job.options, Job.attempts, Job.started_at)
    ).first()
    return ClaimedJob(*claimed) if claimed else None


def claim_jobs(session: Session, *criteria) -> list[ClaimedJob]:
    """Claim in one UPDATE every unfinished job matching ``criteria`` (a batch of messages, a bulk chunk).

    The same condition as :func:`claim_job`: finished and canceled jobs are left out.
    """
    now = utcnow()
    rows = session.execute(
        update(Job)
        .where(Job.status.in_(UNFINISHED_STATUSES), *criteria)
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_at=func.coalesce(Job.started_at, now))
        .returning(Job.id, Job.tenant_id, Job.type, Job.input, Job.options, Job.attempts, Job.started_at)
        .execution_options(synchronize_session=False)
    ).all()
    return [ClaimedJob(*row) for row in rows]


def complete_emotion_jobs(session: Session, outcomes: list[tuple[ClaimedJob, dict]], model_name: str,
                          model_version: str) -> list[ClaimedJob]:
    """Store many results and their scores in one transaction, each only if its job still runs.

    Returns the jobs stored; one canceled or finished elsewhere meanwhile is left out. A bulk
    chunk stores hundreds of results at a time, so on PostgreSQL one UPDATE finishes them all
    and one INSERT .. SELECT derives the score rows from the stored results, inside the
    database; elsewhere (SQLite) it is one UPDATE per job and the rows are built here.
    """
    if not outcomes:
        return []
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        stored_ids = _finish_many_postgresql(session, outcomes, now, model_name, model_version)
        if stored_ids:
            session.execute(INSERT_SCORES_FROM_RESULTS, {"job_ids": [str(job_id) for job_id in stored_ids],
                                                         "created_at": now})
        return [job for job, _ in outcomes if job.id in stored_ids]
    stored = [(job, result) for job, result in outcomes
              if _finish(session, job.id, JobStatus.SUCCEEDED, job.started_at, result=result,
                         model_name=model_name, model_version=model_version)]
    scores = [row for job, result in stored for row in emotion_score_values(job, result, now)]
    if scores:
        session.execute(insert(EmotionScore), scores)
    return [job for job, _ in stored]


# One JSON parameter for all the results: the statement text never changes, whatever the batch size.
FINISH_MANY = text("""
    UPDATE jobs SET status = 'succeeded', finished_at = :now, result = finished.result,
           processing_ms = CAST(EXTRACT(EPOCH FROM (:now - jobs.started_at)) * 1000 AS INTEGER),
           model_name = :model_name, model_version = :model_version
    FROM jsonb_to_recordset(CAST(:finished AS JSONB)) AS finished(id UUID, result JSONB)
    WHERE jobs.id = finished.id AND jobs.status = 'running'
    RETURNING jobs.id
""")

# The rows emotion_score_rows builds, computed from the results just stored.
INSERT_SCORES_FROM_RESULTS = text("""
    INSERT INTO emotion_scores (job_id, tenant_id, label, probability, is_top, above_threshold, created_at)
    SELECT jobs.id, jobs.tenant_id, scores.key, CAST(scores.value AS DOUBLE PRECISION),
           scores.key = jobs.result ->> 'top_emotion',
           COALESCE(jsonb_exists(jobs.result -> 'emotions', scores.key), FALSE), :created_at
    FROM jobs CROSS JOIN LATERAL jsonb_each_text(jobs.result -> 'probabilities') AS scores
    WHERE jobs.id = ANY(CAST(:job_ids AS UUID[]))
""")


def _finish_many_postgresql(session: Session, outcomes: list[tuple[ClaimedJob, dict]], now: datetime,
                            model_name: str, model_version: str) -> set[uuid.UUID]:
    finished = json.dumps([{"id": str(job.id), "result": result} for job, result in outcomes],
                          separators=(",", ":"))
    rows = session.execute(FINISH_MANY, {"now": now, "model_name": model_name, "model_version": model_version,
                                         "finished": finished})
    return {uuid.UUID(str(row[0])) for row in rows}


def emotion_score_values(job: ClaimedJob, result: dict, created_at: datetime) -> list[dict]:
    """:func:`emotion_score_rows` as plain rows, for one INSERT of many jobs' scores."""
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


def complete_emotion_job(
    session: Session, job: ClaimedJob, result: dict, model_name: str, model_version: str
) -> bool:
    """Store the result and its per-label scores in one transaction, only if the job still runs."""
    if not _finish(session, job.id, JobStatus.SUCCEEDED, job.started_at, result=result,
                   model_name=model_name, model_version=model_version):
        return False
    session.add_all(emotion_score_rows(job, result))
    return True


def emotion_score_rows(job: ClaimedJob, result: dict) -> list[EmotionScore]:
    above = set(result.get("emotions", []))
    return [
        EmotionScore(
            job_id=job.id,
            tenant_id=job.tenant_id,
            label=label,
            probability=probability,
            is_top=label == result.get("top_emotion"),
            above_threshold=label in above,
        )
        for label, probability in result.get("probabilities", {}).items()
    ]


def complete_job(session: Session, job: ClaimedJob, result: dict, model_name: str | None = None,
                 model_version: str | None = None) -> bool:
    return _finish(session, job.id, JobStatus.SUCCEEDED, job.started_at, result=result,
                   model_name=model_name, model_version=model_version)


def fail_job(session: Session, job: ClaimedJob, code: str, message: str) -> bool:
    return _finish(session, job.id, JobStatus.FAILED, job.started_at, error_code=code, error_message=message)


def fail_unclaimed_job(session: Session, job_id: uuid.UUID, code: str, message: str) -> bool:
    """Fail a job without running it (for example one that exhausted its attempts)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED_STATUSES))
        .values(status=JobStatus.FAILED, finished_at=utcnow(), error_code=code, error_message=message)
    )
    return result.rowcount == 1


def cancel_job(session: Session, job_id: uuid.UUID) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED_STATUSES))
        .values(status=JobStatus.CANCELED, finished_at=utcnow())
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
        select(Job.id, Job.type)
        .where(Job.batch_id.is_(None),
               stale_condition(requeue_after_s, running_stale_after_s, unpublished_after_s))
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
