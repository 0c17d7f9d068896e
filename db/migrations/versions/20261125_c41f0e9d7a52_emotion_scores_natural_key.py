"""emotion_scores keyed by (job, label), tied to the tenant through its job

Scores are inserted 28 rows per job, hundreds of jobs per bulk chunk. On PostgreSQL every
foreign key is checked row by row, and the surrogate `id` needs a sequence and an index of its
own; together they cost more than the rows. The natural key (job_id, label), already unique,
becomes the primary key; the tenant's foreign key goes, since the job's own cascade (and the
job's foreign key to its tenant) already removes a tenant's scores with its jobs.

Revision ID: c41f0e9d7a52
Revises: 8a579d61a878
Create Date: 2026-11-25 15:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'c41f0e9d7a52'
down_revision: Union[str, Sequence[str], None] = '8a579d61a878'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('emotion_scores', schema=None) as batch_op:
        batch_op.drop_constraint('fk_emotion_scores_tenant_id_tenants', type_='foreignkey')
        batch_op.drop_constraint('uq_emotion_scores_job_label', type_='unique')
        batch_op.drop_constraint('pk_emotion_scores', type_='primary')
        batch_op.drop_column('id')
        batch_op.create_primary_key('pk_emotion_scores', ['job_id', 'label'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint('pk_emotion_scores', 'emotion_scores', type_='primary')
        op.execute('ALTER TABLE emotion_scores ADD COLUMN id BIGSERIAL')
        op.create_primary_key('pk_emotion_scores', 'emotion_scores', ['id'])
        op.create_unique_constraint('uq_emotion_scores_job_label', 'emotion_scores', ['job_id', 'label'])
        op.create_foreign_key('fk_emotion_scores_tenant_id_tenants', 'emotion_scores', 'tenants',
                              ['tenant_id'], ['id'], ondelete='CASCADE')
        return
    # SQLite: the table is rebuilt; an INTEGER PRIMARY KEY column numbers the copied rows itself.
    with op.batch_alter_table('emotion_scores', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('pk_emotion_scores', type_='primary')
        batch_op.add_column(sa.Column('id', sa.Integer(), nullable=True))
        batch_op.create_primary_key('pk_emotion_scores', ['id'])
        batch_op.create_unique_constraint('uq_emotion_scores_job_label', ['job_id', 'label'])
        batch_op.create_foreign_key('fk_emotion_scores_tenant_id_tenants', 'tenants', ['tenant_id'], ['id'],
                                    ondelete='CASCADE')
