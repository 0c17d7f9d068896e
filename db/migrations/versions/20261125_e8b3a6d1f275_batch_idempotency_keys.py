"""Idempotency-Key on batch uploads

A retried upload of thousands of texts must not start a second batch: `batches` keeps the key
and a fingerprint of the parsed upload, unique per tenant among batches that have a key.

Revision ID: e8b3a6d1f275
Revises: c41f0e9d7a52
Create Date: 2026-11-25 17:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'e8b3a6d1f275'
down_revision: str | Sequence[str] | None = 'c41f0e9d7a52'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_KEY = "idempotency_key IS NOT NULL"


def upgrade() -> None:
    op.add_column('batches', sa.Column('idempotency_key', sa.String(length=255), nullable=True))
    op.add_column('batches', sa.Column('request_hash', sa.String(length=64), nullable=True))
    op.create_index('uq_batches_tenant_idempotency_key', 'batches', ['tenant_id', 'idempotency_key'], unique=True,
                    postgresql_where=sa.text(HAS_KEY), sqlite_where=sa.text(HAS_KEY))


def downgrade() -> None:
    op.drop_index('uq_batches_tenant_idempotency_key', 'batches')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('request_hash')
        batch_op.drop_column('idempotency_key')
