"""Tenants and API keys: creation, lookup by hash, revocation.

A key looks like ``samo_<8 hex>_<43 url-safe chars>``; the first two parts are the visible
prefix stored in clear, the whole key is stored only as its SHA-256 digest. Keys carry 256 bits
of randomness, so a fast digest is safe here (no password-style stretching needed).
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, or_, select, update
from sqlalchemy.orm import Session

from db.models import ApiKey, Tenant, utcnow

KEY_SCHEME = "samo"
ALL_SCOPES = ("jobs:read", "jobs:write", "batches:read", "batches:write", "webhooks:manage", "analytics:read",
              "jobs:delete", "subjects:export", "audit:read")
DEFAULT_SCOPES = ALL_SCOPES


@dataclass(frozen=True)
class IssuedKey:
    """What the caller sees exactly once."""

    key: str
    record: ApiKey


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    return "_".join(key.split("_", 2)[:2])


def generate_api_key() -> str:
    return f"{KEY_SCHEME}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def validate_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}; known: {', '.join(ALL_SCOPES)}")
    return sorted(set(scopes))


def create_tenant(session: Session, name: str, tier: str = "free") -> Tenant:
    tenant = Tenant(name=name, tier=tier)
    session.add(tenant)
    session.flush()
    return tenant


def find_tenant(session: Session, name_or_id: str) -> Tenant | None:
    try:
        tenant = session.get(Tenant, uuid.UUID(name_or_id))
        if tenant is not None:
            return tenant
    except ValueError:
        pass
    return session.scalar(select(Tenant).where(Tenant.name == name_or_id))


def create_api_key(
    session: Session, tenant: Tenant, scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES, name: str = ""
) -> IssuedKey:
    key = generate_api_key()
    record = ApiKey(
        tenant_id=tenant.id,
        name=name,
        prefix=key_prefix(key),
        key_hash=hash_api_key(key),
        scopes=validate_scopes(scopes),
    )
    session.add(record)
    session.flush()
    return IssuedKey(key=key, record=record)


def revoke_api_key(session: Session, prefix: str) -> ApiKey | None:
    record = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def _key_with_tier(session: Session, condition) -> Row | None:
    return session.execute(
        select(ApiKey.id, ApiKey.tenant_id, ApiKey.key_hash, ApiKey.scopes, ApiKey.revoked_at,
               ApiKey.last_used_at, Tenant.tier)
        .join(Tenant, Tenant.id == ApiKey.tenant_id).where(condition)
    ).first()


def key_with_tier_by_hash(session: Session, key_hash: str) -> Row | None:
    """What authentication needs of the key with this digest, as plain columns (the tenant's tier last)."""
    return _key_with_tier(session, ApiKey.key_hash == key_hash)


def key_with_tier_by_id(session: Session, api_key_id: uuid.UUID) -> Row | None:
    """The same columns as :func:`key_with_tier_by_hash`, for the key a token names."""
    return _key_with_tier(session, ApiKey.id == api_key_id)


def touch_last_used(session: Session, api_key_id: uuid.UUID, now: datetime, unless_since: datetime) -> None:
    """Set ``last_used_at`` unless it is already after ``unless_since``: concurrent requests write it once."""
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == api_key_id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < unless_since))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
