"""Timestamp columns on the session's database (PostgreSQL, or SQLite with ``--database=sqlite``): aware UTC out,
aware only in."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from db.api_keys import create_tenant
from db.jobs import claim_jobs
from db.models import Job, Tenant
from db.session import session_scope

KOLKATA = timezone(timedelta(hours=5, minutes=30))


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value


def stored_tenant(url: str, created_at: datetime) -> uuid.UUID:
    with session_scope(url) as session:
        tenant = create_tenant(session, f"tenant-{uuid.uuid4().hex[:10]}")
        tenant.created_at = created_at
        return tenant.id


def test_a_timestamp_reads_back_as_the_same_instant_in_utc(database_url):
    written = datetime(2026, 3, 4, 10, 30, 15, 250000, tzinfo=KOLKATA)
    tenant_id = stored_tenant(database_url, written)
    with session_scope(database_url) as session:
        if session.bind.dialect.name == "postgresql":
            session.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        read = session.scalar(select(Tenant.created_at).where(Tenant.id == tenant_id))
    assert_utc(read)
    assert read == written and read.hour == 5


def test_comparisons_in_sql_see_the_utc_instant(database_url):
    written = datetime(2026, 3, 4, 10, 30, tzinfo=KOLKATA)
    tenant_id = stored_tenant(database_url, written)
    with session_scope(database_url) as session:
        def created_after(hour: int, minute: int):
            when = datetime(2026, 3, 4, hour, minute, tzinfo=UTC)
            return session.scalar(select(Tenant.id).where(Tenant.id == tenant_id, Tenant.created_at > when))

        assert (created_after(4, 59), created_after(5, 1)) == (tenant_id, None)


def test_defaults_and_returning_are_aware_utc(database_url):
    with session_scope(database_url) as session:
        tenant = create_tenant(session, f"tenant-{uuid.uuid4().hex[:10]}")
        job = Job(tenant_id=tenant.id, type="emotion", input={}, options={})
        session.add(job)
        session.flush()
        [claimed] = claim_jobs(session, Job.id == job.id)
    assert_utc(claimed.started_at)
    with session_scope(database_url) as session:
        stored = session.get(Job, job.id)
        assert_utc(stored.created_at)
        assert stored.started_at == claimed.started_at


def test_a_naive_datetime_is_refused(database_url):
    with session_scope(database_url) as session:
        tenant = create_tenant(session, f"tenant-{uuid.uuid4().hex[:10]}")
        tenant.created_at = datetime(2026, 3, 4, 10, 30)
        with pytest.raises(StatementError) as raised:
            session.flush()
        assert isinstance(raised.value.orig, ValueError)
        session.rollback()
