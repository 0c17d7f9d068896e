"""Reading tenants for operators (the CLI's listings), and each tenant's data policy."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import ApiKey, Tenant


def tenants_with_active_keys(session: Session) -> list[tuple[Tenant, int]]:
    """Every tenant with its number of unrevoked keys, oldest tenant first."""
    active_keys = (
        select(ApiKey.tenant_id, func.count().label("n"))
        .where(ApiKey.revoked_at.is_(None)).group_by(ApiKey.tenant_id).subquery()
    )
    return [tuple(row) for row in session.execute(
        select(Tenant, func.coalesce(active_keys.c.n, 0))
        .outerjoin(active_keys, active_keys.c.tenant_id == Tenant.id)
        .order_by(Tenant.created_at, Tenant.name)
    ).all()]


def tenant_keys(session: Session, tenant_id: uuid.UUID) -> list[ApiKey]:
    """The tenant's keys, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)))


@dataclass(frozen=True)
class DataPolicy:
    """What a tenant keeps of its jobs by default: ``retention_days`` (None: for ever) and whether
    inputs are stored (``store_input`` false: score-only mode)."""

    retention_days: int | None = None
    store_input: bool = True


#: A tenant that set nothing: inputs stored, kept for ever.
DEFAULT_POLICY = DataPolicy()
