"""Subjects and entry metadata on jobs

A job names the end user whose entry it analyses (`subject`), when the entry was written or
recorded (`occurred_at`, the submission time for jobs stored before) and the app's metadata,
with an index for a subject's entries by time.

Revision ID: 5d2c7a9e41b3
Revises: e8b3a6d1f275
Create Date: 2026-12-02 01:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '5d2c7a9e41b3'
down_revision: str | Sequence[str] | None = 'e8b3a6d1f275'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_SUBJECT = "subject IS NOT NULL"


def upgrade() -> None:
    op.add_column('jobs', sa.Column('subject', sa.String(length=128), nullable=True))
    op.add_column('jobs', sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('entry_metadata', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
                                    nullable=True))
    op.execute("UPDATE jobs SET occurred_at = created_at WHERE occurred_at IS NULL")
    op.create_index('ix_jobs_tenant_subject_occurred', 'jobs', ['tenant_id', 'subject', 'occurred_at'],
                    postgresql_where=sa.text(HAS_SUBJECT), sqlite_where=sa.text(HAS_SUBJECT))


def downgrade() -> None:
    op.drop_index('ix_jobs_tenant_subject_occurred', 'jobs')
    # Plain ALTER TABLE on SQLite too: a batch copy of `jobs` would drop its trigger (migration c41f0e9d7a52).
    for column in ('entry_metadata', 'occurred_at', 'subject'):
        op.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
