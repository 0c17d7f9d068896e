"""Removing jobs with everything derived from them, in the caller's transaction.

A job's rows are its own row, its emotion score rows (deleted by job id in one statement just
before the jobs, which leaves the trigger that would delete them with the jobs nothing to do),
its webhook subscriptions (by foreign key) and its webhook deliveries with their
attempts: delivery rows are deleted rather than stripped of their payload, since a delivery
exists only to carry that payload (a pending one would still send the text), and the audit
event keeps the count. Its share of the analytics rollups is taken out in the same transaction
(``db.rollups.add_results`` with sign -1).

Unfinished jobs are canceled first, by the same conditional UPDATE cancel uses: that takes
their row locks, so a worker storing a result meanwhile either finished before (its rollups
are then subtracted here) or finds the row gone and its UPDATE of a missing row does nothing.
The caller removes what lives outside the database (media files, result-cache entries) after
the commit; the orphan-media sweep removes a file left by a process that died in between.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from config.job_types import audio_types
from db import subject_presence
from db.models import (
    UNFINISHED_STATUSES,
    Batch,
    EmotionScore,
    Job,
    JobStatus,
    WebhookDelivery,
    WebhookSubscription,
    emotion_rollups,
    utcnow,
)
from db.rollups import ScoredEntry, add_results, subtract_from_tenant_series

#: Jobs removed per statement; a large batch or a subject is removed chunk by chunk.
CHUNK = 500


@dataclass
class Removed:
    """Rows removed, by kind; ``audio_job_ids`` are the removed jobs that may have left a media file."""

    jobs: int = 0
    scores: int = 0
    deliveries: int = 0
    rollup_entries: int = 0
    batches: int = 0
    audio_job_ids: list[uuid.UUID] = field(default_factory=list)
    job_ids: list[uuid.UUID] = field(default_factory=list)

    def add(self, other: Removed) -> None:
        for name in ("jobs", "scores", "deliveries", "rollup_entries", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.audio_job_ids += other.audio_job_ids
        self.job_ids += other.job_ids

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type in (int, "int")}

    @property
    def rows(self) -> int:
        return self.jobs + self.scores + self.deliveries + self.batches


def cancel_unfinished(session: Session, job_ids: Sequence[uuid.UUID]) -> int:
    return session.execute(
        update(Job).where(Job.id.in_(job_ids), Job.status.in_(UNFINISHED_STATUSES))
        .values(status=JobStatus.CANCELED, finished_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount


def stored_results(session: Session, job_ids: Sequence[uuid.UUID]) -> list[ScoredEntry]:
    """The emotion results the rollups hold for these jobs (succeeded ones with score rows), as
    ``db.rollups.stored_result`` reads one."""
    rows = session.execute(
        select(Job.id, Job.tenant_id, Job.subject, Job.occurred_at, Job.created_at,
               EmotionScore.label, EmotionScore.probability, EmotionScore.above_threshold)
        .join(EmotionScore, EmotionScore.job_id == Job.id)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.SUCCEEDED)
    ).all()
    by_job: dict[uuid.UUID, list] = defaultdict(list)
    for row in rows:
        by_job[row.id].append(row)
    entries = []
    for scores in by_job.values():
        first = scores[0]
        emotion = {"probabilities": {row.label: row.probability for row in scores},
                   "emotions": [row.label for row in scores if row.above_threshold]}
        entries.append(ScoredEntry(first.tenant_id, first.subject, first.occurred_at or first.created_at, emotion))
    return entries


def delete_jobs(session: Session, tenant_id: uuid.UUID, job_ids: Sequence[uuid.UUID],
                keep_subject_series: bool = True) -> Removed:
    """Remove the tenant's jobs among ``job_ids`` (at most :data:`CHUNK`) and what derives from them.

    ``keep_subject_series`` False leaves the subjects' own rollup rows alone (an erasure deletes
    them whole, :func:`delete_subject_rollups`) and takes the jobs out of the tenant series in
    one statement computed in the database (``db.rollups.subtract_from_tenant_series``).
    """
    ids = list(session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.tenant_id == tenant_id)))
    if not ids:
        return Removed()
    cancel_unfinished(session, ids)
    rollup_entries = session.scalar(select(func.count()).select_from(Job).where(
        Job.id.in_(ids), Job.status == JobStatus.SUCCEEDED,
        select(EmotionScore.job_id).where(EmotionScore.job_id == Job.id).exists()))
    if keep_subject_series:
        add_results(session, stored_results(session, ids), sign=-1)
    else:
        subtract_from_tenant_series(session, tenant_id, ids)
    audio = list(session.scalars(select(Job.id).where(Job.id.in_(ids), Job.type.in_(audio_types()))))
    scores = session.execute(delete(EmotionScore).where(EmotionScore.job_id.in_(ids))).rowcount
    deliveries = session.execute(delete(WebhookDelivery).where(WebhookDelivery.job_id.in_(ids))).rowcount
    jobs = session.execute(delete(Job).where(Job.id.in_(ids)).execution_options(synchronize_session=False)).rowcount
    return Removed(jobs=jobs, scores=scores or 0, deliveries=deliveries, rollup_entries=rollup_entries or 0,
                   audio_job_ids=audio, job_ids=ids)


def delete_batch(session: Session, batch: Batch) -> Removed:
    """A batch with every item, the items' derived rows and the batch's own webhooks."""
    removed = Removed()
    while ids := list(session.scalars(select(Job.id).where(Job.batch_id == batch.id).limit(CHUNK))):
        removed.add(delete_jobs(session, batch.tenant_id, ids))
    removed.deliveries += session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.batch_id == batch.id)).rowcount
    session.execute(delete(WebhookSubscription).where(WebhookSubscription.batch_id == batch.id))
    removed.batches = session.execute(delete(Batch).where(Batch.id == batch.id)).rowcount
    return removed


def subject_job_ids(session: Session, tenant_id: uuid.UUID, subject: str, limit: int = CHUNK) -> list[uuid.UUID]:
    return list(session.scalars(select(Job.id).where(Job.tenant_id == tenant_id, Job.subject == subject)
                                .limit(limit)))


def delete_subject_rollups(session: Session, tenant_id: uuid.UUID, subject: str) -> int:
    """An erased subject's rollup rows, and its presence rows (``db.subject_presence.forget``)."""
    subject_presence.forget(session, tenant_id, subject)
    return session.execute(delete(emotion_rollups).where(emotion_rollups.c.tenant_id == tenant_id,
                                                         emotion_rollups.c.subject == subject)).rowcount
