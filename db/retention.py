"""Retention: jobs past their ``purge_after`` are deleted, a bounded chunk per transaction.

A job's ``purge_after`` is set at submission from its ``options.retention_days`` or else its
tenant's ``retention_days`` (``api.intake.data_policy``); a tenant whose retention changes has
its jobs' dates recomputed (:func:`reschedule_tenant`). Deleting a job deletes its input, result
and emotion score rows (a trigger, migration c41f0e9d7a52), its webhook subscription and its
webhook deliveries with their attempts (their payloads are job documents). The analytics
rollups (``db.rollups``) and shift events keep their sums: they hold no text, and a subject's
timeline outlives its entries. Only finished jobs are deleted; one still running when its date
passes goes in the first sweep after it ends. The sweep is an index range scan on
``ix_jobs_purge_after`` and safe to run twice at once: a row two sweeps pick is deleted once.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.models import TERMINAL_STATUSES, Job, Tenant, WebhookDelivery


@dataclass
class PurgedChunk:
    jobs: list[uuid.UUID] = field(default_factory=list)
    #: Those of ``jobs`` whose type takes uploads: their media file, if one was left, goes too.
    audio_jobs: list[uuid.UUID] = field(default_factory=list)
    deliveries: int = 0


def purge_expired(session: Session, now: datetime, limit: int, audio_types: frozenset[str]) -> PurgedChunk:
    """Delete up to ``limit`` finished jobs whose ``purge_after`` is at or before ``now``."""
    rows = session.execute(
        select(Job.id, Job.type)
        .where(Job.purge_after <= now, Job.status.in_(TERMINAL_STATUSES))
        .order_by(Job.purge_after)
        .limit(limit)
    ).all()
    purged = PurgedChunk([row.id for row in rows], [row.id for row in rows if row.type in audio_types])
    if not purged.jobs:
        return purged
    purged.deliveries = session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.job_id.in_(purged.jobs))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(delete(Job).where(Job.id.in_(purged.jobs)).execution_options(synchronize_session=False))
    return purged


def purge_date(created_at: datetime, *retentions: int | None) -> datetime | None:
    """``created_at`` plus the shortest of the retentions given (in days); None when none is."""
    days = [days for days in retentions if days is not None]
    return created_at + timedelta(days=min(days)) if days else None


def set_tenant_policy(session: Session, tenant: Tenant, retention_days: int | None,
                      store_input: bool | None = None, chunk_size: int = 1000) -> int:
    """Set the tenant's retention (and, unless None, its ``store_input`` default); returns the jobs
    whose ``purge_after`` changed."""
    tenant.retention_days = retention_days
    if store_input is not None:
        tenant.store_input = store_input
    session.flush()
    return reschedule_tenant(session, tenant.id, retention_days, chunk_size)


def reschedule_tenant(session: Session, tenant_id: uuid.UUID, retention_days: int | None,
                      chunk_size: int = 1000) -> int:
    """Recompute the ``purge_after`` of the tenant's jobs for a new tenant retention: each job
    keeps the shorter of its own ``options.retention_days`` and the tenant's. Read in key order,
    a chunk at a time."""
    changed, after = 0, None
    while True:
        query = select(Job.id, Job.created_at, Job.options, Job.purge_after).where(Job.tenant_id == tenant_id)
        if after is not None:
            query = query.where(Job.id > after)
        rows = session.execute(query.order_by(Job.id).limit(chunk_size)).all()
        if not rows:
            return changed
        for row in rows:
            wanted = purge_date(row.created_at, (row.options or {}).get("retention_days"), retention_days)
            if wanted != row.purge_after:
                session.execute(update(Job).where(Job.id == row.id).values(purge_after=wanted))
                changed += 1
        after = rows[-1].id
