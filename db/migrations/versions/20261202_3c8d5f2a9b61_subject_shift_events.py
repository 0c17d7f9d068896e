"""Subject shift events: one row per subject and shift-check window that sent `subject.shift_detected`

Revision ID: 3c8d5f2a9b61
Revises: 9f4e1b6c3a07
Create Date: 2026-12-02 02:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '3c8d5f2a9b61'
down_revision: str | Sequence[str] | None = '9f4e1b6c3a07'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'subject_shift_events',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('shift_score', sa.Float(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_subject_shift_events_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', 'subject', 'window_start', name=op.f('pk_subject_shift_events')),
    )


def downgrade() -> None:
    op.drop_table('subject_shift_events')
