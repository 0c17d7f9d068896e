"""cheaper writes per job: emotion_scores keyed by (job, label) without per-row foreign keys, partial job indexes

Scores are inserted 28 rows per job, hundreds of jobs per bulk chunk. On PostgreSQL every
foreign key is checked row by row, and the surrogate `id` needs a sequence and an index of its
own; together they cost more than the rows (measured: 225 ms per 256-job chunk, 60 ms of it per
foreign key). The natural key (job_id, label), already unique, becomes the primary key. The
table is append-only and written only by INSERT .. SELECT from `jobs`, so a score's job exists
when it is written; what the foreign keys still did, removing a job's scores with the job
(and through the job, a tenant's), a trigger on `jobs` now does, once per DELETE statement on
PostgreSQL.

Every job row is written three times (inserted, claimed, finished), each time into every index
of `jobs` (a status change is never a HOT update). Two indexes only serve some rows and now
hold only those: the idempotency keys (most jobs have none) and the stale-job sweep's
(status, created_at), which looks at unfinished jobs only.

SQLite rebuilds a table for most ALTERs (Alembic's batch mode), which drops its triggers: the
`jobs` rebuild comes before the trigger here, and a later migration that rebuilds `jobs` there
must create `trg_jobs_delete_emotion_scores` again.

Revision ID: c41f0e9d7a52
Revises: 8a579d61a878
Create Date: 2026-11-25 15:20:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'c41f0e9d7a52'
down_revision: str | Sequence[str] | None = '8a579d61a878'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL_CASCADE = """
CREATE FUNCTION delete_emotion_scores_of_deleted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM emotion_scores USING deleted_jobs WHERE emotion_scores.job_id = deleted_jobs.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_jobs_delete_emotion_scores AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION delete_emotion_scores_of_deleted_jobs();
"""

SQLITE_CASCADE = """
CREATE TRIGGER trg_jobs_delete_emotion_scores AFTER DELETE ON jobs FOR EACH ROW
BEGIN
    DELETE FROM emotion_scores WHERE job_id = OLD.id;
END
"""


UNFINISHED = "status IN ('queued', 'running')"
HAS_IDEMPOTENCY_KEY = "idempotency_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_tenant_idempotency_key', type_='unique')
        batch_op.drop_index('ix_jobs_status_created')
    op.create_index('uq_jobs_tenant_idempotency_key', 'jobs', ['tenant_id', 'idempotency_key'], unique=True,
                    postgresql_where=sa.text(HAS_IDEMPOTENCY_KEY), sqlite_where=sa.text(HAS_IDEMPOTENCY_KEY))
    op.create_index('ix_jobs_status_created', 'jobs', ['status', 'created_at'],
                    postgresql_where=sa.text(UNFINISHED), sqlite_where=sa.text(UNFINISHED))
    with op.batch_alter_table('emotion_scores', schema=None) as batch_op:
        batch_op.drop_constraint('fk_emotion_scores_job_id_jobs', type_='foreignkey')
        batch_op.drop_constraint('fk_emotion_scores_tenant_id_tenants', type_='foreignkey')
        batch_op.drop_constraint('uq_emotion_scores_job_label', type_='unique')
        batch_op.drop_constraint('pk_emotion_scores', type_='primary')
        batch_op.drop_column('id')
        batch_op.create_primary_key('pk_emotion_scores', ['job_id', 'label'])
    op.execute(POSTGRESQL_CASCADE if op.get_bind().dialect.name == 'postgresql' else SQLITE_CASCADE)


def downgrade() -> None:
    op.execute('DROP TRIGGER trg_jobs_delete_emotion_scores' +
               (' ON jobs' if op.get_bind().dialect.name == 'postgresql' else ''))
    op.drop_index('ix_jobs_status_created', 'jobs')
    op.drop_index('uq_jobs_tenant_idempotency_key', 'jobs')
    op.create_index('ix_jobs_status_created', 'jobs', ['status', 'created_at'])
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_jobs_tenant_idempotency_key', ['tenant_id', 'idempotency_key'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION delete_emotion_scores_of_deleted_jobs()')
        op.drop_constraint('pk_emotion_scores', 'emotion_scores', type_='primary')
        op.execute('ALTER TABLE emotion_scores ADD COLUMN id BIGSERIAL')
        op.create_primary_key('pk_emotion_scores', 'emotion_scores', ['id'])
        op.create_unique_constraint('uq_emotion_scores_job_label', 'emotion_scores', ['job_id', 'label'])
        op.create_foreign_key('fk_emotion_scores_job_id_jobs', 'emotion_scores', 'jobs',
                              ['job_id'], ['id'], ondelete='CASCADE')
        op.create_foreign_key('fk_emotion_scores_tenant_id_tenants', 'emotion_scores', 'tenants',
                              ['tenant_id'], ['id'], ondelete='CASCADE')
        return
    # SQLite: the table is rebuilt; an INTEGER PRIMARY KEY column numbers the copied rows itself.
    with op.batch_alter_table('emotion_scores', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('pk_emotion_scores', type_='primary')
        batch_op.add_column(sa.Column('id', sa.Integer(), nullable=True))
        batch_op.create_primary_key('pk_emotion_scores', ['id'])
        batch_op.create_unique_constraint('uq_emotion_scores_job_label', ['job_id', 'label'])
        batch_op.create_foreign_key('fk_emotion_scores_job_id_jobs', 'jobs', ['job_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key('fk_emotion_scores_tenant_id_tenants', 'tenants', ['tenant_id'], ['id'],
                                    ondelete='CASCADE')
