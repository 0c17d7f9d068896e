"""Counts over the jobs table for monitoring, bounded in time so a slow count cannot hold a scrape."""
from __future__ import annotations

from sqlalchemy import func, select, text

from db.models import Job
from db.session import get_engine


def job_counts_by_type_and_status(database_url: str, timeout_ms: int) -> list[tuple]:
    """(type, status, number) for every pair present; on PostgreSQL cancelled after ``timeout_ms``."""
    engine = get_engine(database_url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        return [tuple(row) for row in connection.execute(
            select(Job.type, Job.status, func.count()).group_by(Job.type, Job.status)
        ).all()]
