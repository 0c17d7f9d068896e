"""Per-tenant admission: transaction-scoped advisory locks and the bounded count of jobs in flight.

Admissions near a tenant's cap are decided one at a time: the deciding transaction takes the
tenant's lock for what it admits (interactive jobs, or batches), counts, and inserts before it
commits, when PostgreSQL releases the lock. Every lock is ``pg_advisory_xact_lock(class, key)``
with the class naming what is admitted and the key derived from the tenant id, so the locks of
different admissions never collide. SQLite has no advisory locks; there the jobs-in-flight count
relies on the admissions pending in Redis (``api.auth.ratelimit.InFlightEstimate``), which
cover the other processes' uncommitted admissions too. Taking SQLite's write lock instead
would hold it across that Redis round trip, and a gevent worker blocked in SQLite's busy wait
cannot let the lock's holder, on the same thread, finish.
"""
from __future__ import annotations

import uuid
import zlib
from enum import IntEnum

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db.models import UNFINISHED_STATUSES, Job


class TenantLock(IntEnum):
    """The class argument of the advisory lock: one namespace per kind of admission."""

    JOBS_IN_FLIGHT = 0x5A30
    BATCH_ADMISSION = 0x5A31


def tenant_lock_key(tenant_id: uuid.UUID) -> int:
    """The tenant id folded into the lock's signed 32-bit key argument."""
    return zlib.crc32(tenant_id.bytes) - 2**31


def lock_tenant(session: Session, tenant_id: uuid.UUID, lock: TenantLock) -> None:
    """Hold the tenant's ``lock`` until the session's transaction ends (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:cls, :obj)"),
                        {"cls": int(lock), "obj": tenant_lock_key(tenant_id)})


def count_jobs_in_flight(session: Session, tenant_id: uuid.UUID, up_to: int) -> int:
    """Interactive jobs only: batch items have their own limit, batches in flight.

    Counts at most ``up_to`` rows, so a submission costs the same however far over its cap a
    tenant is.
    """
    unfinished = (
        select(Job.id)
        .where(Job.tenant_id == tenant_id, Job.status.in_(UNFINISHED_STATUSES), Job.batch_id.is_(None))
        .limit(up_to)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(unfinished)) or 0
