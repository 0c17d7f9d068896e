"""Tenants with an API key, created in the test database."""
from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass(frozen=True)
class TenantCredentials:
    tenant_id: uuid.UUID
    name: str
    api_key: str
    key_prefix: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.api_key}"}


def new_tenant(database_url: str, tier: str = "free", scopes=None, name: str | None = None) -> TenantCredentials:
    """A tenant of its own and one key; ``scopes`` None means the key's default scopes."""
    from db.api_keys import create_api_key, create_tenant
    from db.session import session_scope

    with session_scope(database_url) as session:
        tenant = create_tenant(session, name or f"tenant-{uuid.uuid4().hex[:10]}", tier)
        issued = create_api_key(session, tenant, **({"scopes": scopes} if scopes is not None else {}))
        return TenantCredentials(tenant.id, tenant.name, issued.key, issued.record.prefix)
