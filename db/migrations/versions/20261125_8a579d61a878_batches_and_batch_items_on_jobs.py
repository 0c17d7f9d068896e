"""batches and batch items on jobs

Bulk uploads: a `batches` table, and jobs that belong to one (row number, client id).

Revision ID: 8a579d61a878
Revises: a263f2142821
Create Date: 2026-11-25 12:21:50.978894

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '8a579d61a878'
down_revision: str | Sequence[str] | None = 'a263f2142821'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('batches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Enum('running', 'completed', 'canceled', name='batch_status'), nullable=False),
    sa.Column('source_format', sa.String(length=16), nullable=False),
    sa.Column('total_items', sa.Integer(), nullable=False),
    sa.Column('invalid_items', sa.Integer(), nullable=False),
    sa.Column('row_errors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('chunk_size', sa.Integer(), nullable=False),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_batches_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batches'))
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_index('ix_batches_tenant_created', ['tenant_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_batches_tenant_status', ['tenant_id', 'status'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('batch_item', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('client_id', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_jobs_batch_status', ['batch_id', 'status'], unique=False)
        batch_op.create_index('ix_jobs_tenant_status_unbatched', ['tenant_id', 'status'], unique=False, postgresql_where=sa.text('batch_id IS NULL'), sqlite_where=sa.text('batch_id IS NULL'))
        batch_op.create_unique_constraint('uq_jobs_batch_item', ['batch_id', 'batch_item'])
        batch_op.create_foreign_key(batch_op.f('fk_jobs_batch_id_batches'), 'batches', ['batch_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_batch_id_batches'), type_='foreignkey')
        batch_op.drop_constraint('uq_jobs_batch_item', type_='unique')
        batch_op.drop_index('ix_jobs_tenant_status_unbatched', postgresql_where=sa.text('batch_id IS NULL'), sqlite_where=sa.text('batch_id IS NULL'))
        batch_op.drop_index('ix_jobs_batch_status')
        batch_op.drop_column('client_id')
        batch_op.drop_column('batch_item')
        batch_op.drop_column('batch_id')

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index('ix_batches_tenant_status')
        batch_op.drop_index('ix_batches_tenant_created')

    op.drop_table('batches')
    sa.Enum(name='batch_status').drop(op.get_bind(), checkfirst=True)

