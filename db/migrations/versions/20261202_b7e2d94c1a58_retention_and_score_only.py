"""Retention and score-only mode: tenant defaults and each job's purge date

`tenants.retention_days` (null: keep) and `tenants.store_input` (the default of a job's
`options.store_input`); `jobs.purge_after`, set at submission from the job's or the tenant's
retention, with an index holding only the jobs that have one, for the retention sweep.

Revision ID: b7e2d94c1a58
Revises: b7d2e4f61a90
Create Date: 2026-12-02 04:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'b7e2d94c1a58'
down_revision: str | Sequence[str] | None = 'b7d2e4f61a90'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_PURGE_DATE = "purge_after IS NOT NULL"


def upgrade() -> None:
    op.add_column('tenants', sa.Column('retention_days', sa.Integer(), nullable=True))
    op.add_column('tenants', sa.Column('store_input', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column('jobs', sa.Column('purge_after', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_jobs_purge_after', 'jobs', ['purge_after'],
                    postgresql_where=sa.text(HAS_PURGE_DATE), sqlite_where=sa.text(HAS_PURGE_DATE))


def downgrade() -> None:
    op.drop_index('ix_jobs_purge_after', 'jobs')
    # Plain ALTER TABLE on SQLite too: a batch copy of `jobs` would drop its trigger (migration c41f0e9d7a52).
    op.execute("ALTER TABLE jobs DROP COLUMN purge_after")
    op.execute("ALTER TABLE tenants DROP COLUMN store_input")
    op.execute("ALTER TABLE tenants DROP COLUMN retention_days")
