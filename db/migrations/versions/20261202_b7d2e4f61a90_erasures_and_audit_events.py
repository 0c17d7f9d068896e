"""Erasures and audit events; the jobs:delete, subjects:export and audit:read scopes

`erasures` tracks each asynchronous erasure of a subject (at most one pending per subject);
`audit_events` records every deletion, erasure and export (ids and counts only). Keys that could
write jobs may delete them; keys that could read jobs may export a subject and read the audit trail.

Revision ID: b7d2e4f61a90
Revises: 3c8d5f2a9b61
Create Date: 2026-12-02 04:45:00

"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = 'b7d2e4f61a90'
down_revision: str | Sequence[str] | None = '3c8d5f2a9b61'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Each new scope and the scope a key must already hold to be given it.
GRANTED_WITH = {"jobs:delete": "jobs:write", "subjects:export": "jobs:read", "audit:read": "jobs:read"}
PENDING = "status <> 'completed'"


def json_document() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def rewrite_scopes(change) -> None:
    connection = op.get_bind()
    keys = sa.table("api_keys", sa.column("id"), sa.column("scopes", sa.JSON()))
    for key_id, scopes in connection.execute(sa.select(keys.c.id, keys.c.scopes)).all():
        scopes = json.loads(scopes) if isinstance(scopes, str) else list(scopes or [])
        changed = change(scopes)
        if changed != scopes:
            connection.execute(sa.update(keys).where(keys.c.id == key_id).values(scopes=changed))


def granted(scopes: list[str]) -> list[str]:
    added = {scope for scope, needed in GRANTED_WITH.items() if needed in scopes}
    return sorted({*scopes, *added}) if added - set(scopes) else scopes


def upgrade() -> None:
    op.create_table(
        'erasures',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('counts', json_document(), nullable=True),
        sa.Column('actor', json_document(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_erasures_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures')),
    )
    op.create_index('uq_erasures_pending_subject', 'erasures', ['tenant_id', 'subject'], unique=True,
                    postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
    op.create_index('ix_erasures_status_created', 'erasures', ['status', 'created_at'])
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('actor', json_document(), nullable=False),
        sa.Column('target', json_document(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_events_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    )
    op.create_index('ix_audit_events_tenant_created', 'audit_events', ['tenant_id', 'created_at', 'id'])
    rewrite_scopes(granted)


def downgrade() -> None:
    rewrite_scopes(lambda scopes: [scope for scope in scopes if scope not in GRANTED_WITH])
    op.drop_index('ix_audit_events_tenant_created', 'audit_events')
    op.drop_table('audit_events')
    op.drop_index('ix_erasures_status_created', 'erasures')
    op.drop_index('uq_erasures_pending_subject', 'erasures')
    op.drop_table('erasures')
