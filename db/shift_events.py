"""The record of ``subject.shift_detected`` events: at most one per subject and fixed window."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import SubjectShiftEvent, WebhookEndpoint, utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fixed_window_start(moment: datetime, window: timedelta) -> datetime:
    """The start of the window holding ``moment`` when time is cut into ``window``-long pieces
    from the Unix epoch: every worker names the same window for the same moment."""
    return EPOCH + (moment - EPOCH) // window * window


def record_shift(session: Session, tenant_id: uuid.UUID, subject: str, window_start: datetime,
                 score: float) -> bool:
    """Note the event for this subject and window; False when one was noted already.

    ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key settles workers racing on one subject.
    """
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    result = session.execute(
        dialect_insert(SubjectShiftEvent)
        .values(tenant_id=tenant_id, subject=subject, window_start=window_start, shift_score=score,
                created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["tenant_id", "subject", "window_start"])
    )
    return result.rowcount == 1


def listening_tenants(session: Session, tenant_ids: set[uuid.UUID], event_type: str) -> set[uuid.UUID]:
    """The tenants among ``tenant_ids`` with an enabled endpoint taking ``event_type``."""
    return {tenant_id for tenant_id, events in session.execute(
        select(WebhookEndpoint.tenant_id, WebhookEndpoint.events)
        .where(WebhookEndpoint.tenant_id.in_(tenant_ids), WebhookEndpoint.enabled.is_(True))) if event_type in events}
