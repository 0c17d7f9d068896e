"""`subject_shift_events` on PostgreSQL and SQLite: the first record of a subject's window wins, a second is
refused without an error, and other subjects, windows and tenants are apart."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db.session import session_scope
from db.shift_events import record_shift

WINDOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request, database_url, tmp_path):
    if request.param == "postgresql":
        return database_url
    from db.migrate import upgrade_to_head

    sqlite_url = f"sqlite:///{tmp_path / 'samo.db'}"
    upgrade_to_head(sqlite_url)
    return sqlite_url


def record(url, tenant_id, subject="ana", window_start=WINDOW) -> bool:
    with session_scope(url) as session:
        return record_shift(session, tenant_id, subject, window_start, 0.4)


def test_one_record_per_subject_and_window(url):
    from tests.support.tenants import new_tenant

    tenant, other = new_tenant(url).tenant_id, new_tenant(url).tenant_id
    assert record(url, tenant) is True
    assert record(url, tenant) is False
    assert record(url, tenant, subject="ben") is True
    assert record(url, tenant, window_start=WINDOW + timedelta(days=7)) is True
    assert record(url, other) is True
