"""Counts over the jobs table for monitoring, bounded in time so a slow count cannot hold a scrape."""
from __future__ import annotations

from sqlalchemy import func, select, text

from db.models import Job, WebhookDelivery
from db.session import get_engine


def job_counts_by_type_and_status(database_url: str, timeout_ms: int) -> list[tuple]:
    """(type, status, number) for every pair present; on PostgreSQL cancelled after ``timeout_ms``."""
    return _counts(database_url, timeout_ms, select(Job.type, Job.status, func.count()).group_by(Job.type, Job.status))


def webhook_delivery_counts_by_status(database_url: str, timeout_ms: int) -> list[tuple]:
    """(status, number) of webhook deliveries for every status present, bounded like the job counts."""
    return _counts(database_url, timeout_ms,
                   select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))


def _counts(database_url: str, timeout_ms: int, query) -> list[tuple]:
    engine = get_engine(database_url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        return [tuple(row) for row in connection.execute(query).all()]
