"""Erasing everything stored about one subject, chunk by chunk (``tasks.erasures`` runs it).

Each chunk is one transaction that locks the erasure's row, removes up to a chunk of the
subject's jobs (``db.deletion.delete_jobs``, out of the tenant's rollup series) and adds what
it removed to the erasure's counts: a redelivered or concurrent run continues where the last
committed chunk ended and never counts twice. The chunk that finds no job left deletes the
subject's own rollup series and shift events, marks the erasure completed and writes its audit
event. Jobs submitted for the subject while the erasure runs are erased too, until it completes.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import audit
from db.deletion import Removed, delete_jobs, delete_subject_rollups, subject_job_ids
from db.documents import iso_datetime
from db.models import Erasure, SubjectShiftEvent, utcnow

QUEUED, RUNNING, COMPLETED = "queued", "running", "completed"


def erasure_path(erasure_id) -> str:
    return f"/v1/erasures/{erasure_id}"


def erasure_document(erasure: Erasure) -> dict:
    return {"id": str(erasure.id), "subject": erasure.subject, "status": erasure.status, "counts": erasure.counts,
            "created_at": iso_datetime(erasure.created_at), "finished_at": iso_datetime(erasure.finished_at),
            "links": {"self": erasure_path(erasure.id)}}


def pending_erasure(session: Session, tenant_id: uuid.UUID, subject: str) -> Erasure | None:
    return session.scalar(select(Erasure).where(Erasure.tenant_id == tenant_id, Erasure.subject == subject,
                                                Erasure.status != COMPLETED))


def request_erasure(session: Session, tenant_id: uuid.UUID, subject: str, actor: dict) -> tuple[Erasure, bool]:
    """The subject's pending erasure, or a new one (True); two requests at once make one."""
    existing = pending_erasure(session, tenant_id, subject)
    if existing is not None:
        return existing, False
    erasure = Erasure(id=uuid.uuid4(), tenant_id=tenant_id, subject=subject, status=QUEUED, actor=actor,
                      created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(erasure)
    except IntegrityError:
        return pending_erasure(session, tenant_id, subject), False
    return erasure, True


@dataclass
class Chunk:
    """What one chunk did: the jobs it removed (for the media files and cache entries outside the
    database) and whether the erasure is complete."""

    removed: Removed
    done: bool


def erase_chunk(session: Session, erasure_id: uuid.UUID, limit: int) -> Chunk:
    erasure = session.scalar(select(Erasure).where(Erasure.id == erasure_id).with_for_update())
    if erasure is None or erasure.status == COMPLETED:
        return Chunk(Removed(), done=True)
    now = utcnow()
    if erasure.status == QUEUED:
        erasure.status, erasure.started_at = RUNNING, now
    counts = dict(erasure.counts or {})
    ids = subject_job_ids(session, erasure.tenant_id, erasure.subject, limit)
    if ids:
        removed = delete_jobs(session, erasure.tenant_id, ids, keep_subject_series=False)
        for name, number in removed.counts().items():
            counts[name] = counts.get(name, 0) + number
        erasure.counts = counts
        return Chunk(removed, done=False)
    counts["rollups"] = delete_subject_rollups(session, erasure.tenant_id, erasure.subject)
    counts["shift_events"] = session.execute(delete(SubjectShiftEvent).where(
        SubjectShiftEvent.tenant_id == erasure.tenant_id, SubjectShiftEvent.subject == erasure.subject)).rowcount
    erasure.counts = counts
    erasure.status, erasure.finished_at = COMPLETED, now
    audit.record(session, erasure.tenant_id, audit.SUBJECT_ERASED, erasure.actor,
                 {"erasure_id": str(erasure.id), "subject": erasure.subject},
                 sum(number for name, number in counts.items() if name != "rollup_entries"))
    return Chunk(Removed(), done=True)


def unfinished_erasures(session: Session, started_before, limit: int = 100) -> list[uuid.UUID]:
    """Erasures not completed that were requested before ``started_before``: the sweep sends them again."""
    return list(session.scalars(select(Erasure.id).where(Erasure.status != COMPLETED,
                                                         Erasure.created_at < started_before)
                                .order_by(Erasure.created_at).limit(limit)))
