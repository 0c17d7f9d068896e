"""A subject's jobs, oldest entry first, read in pages off a server-side cursor (``yield_per``)."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Job

#: Rows fetched per round trip of the cursor.
PAGE_ROWS = 500


def subject_jobs_query(tenant_id: uuid.UUID, subject: str):
    return select(Job).where(Job.tenant_id == tenant_id, Job.subject == subject)


def count_subject_jobs(session: Session, tenant_id: uuid.UUID, subject: str) -> int:
    return session.scalar(select(func.count()).select_from(subject_jobs_query(tenant_id, subject).subquery())) or 0


def subject_jobs(session: Session, tenant_id: uuid.UUID, subject: str) -> Iterator[Job]:
    """Every job of the subject, by ``occurred_at`` then creation; never all in memory at once."""
    query = (subject_jobs_query(tenant_id, subject)
             .order_by(Job.occurred_at, Job.created_at, Job.id)
             .execution_options(yield_per=PAGE_ROWS))
    for job in session.scalars(query):
        yield job
        session.expunge(job)
