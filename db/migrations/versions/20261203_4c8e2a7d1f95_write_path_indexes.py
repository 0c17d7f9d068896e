"""Indexes for the write path: presence indexes only for slot ranges, no unused score indexes

The two indexes of `subject_presence` on (tenant, unit, bucket, first or last slot) become partial
(`first_slot IS NOT NULL`, `last_slot IS NOT NULL`: true of every row). A query can use a partial
index only when its conditions imply the predicate, and only the distinct-subject counts put a
condition on those slots, so the lookup of one row by its key (linking neighbouring buckets on
every stored pass) can only use the primary key. Before, while the table had no statistics yet,
the planner took the smaller slot index for it and filtered a bucket's every row per lookup.

`emotion_scores` loses `ix_emotion_scores_label_created` and `ix_emotion_scores_tenant_created`:
timelines and insights read the rollups, and every remaining reader of the score rows (rebuild,
correlations, deletion) finds them by job, the primary key's first column. They cost two index
entries per score row, 56 per stored result.

Revision ID: 4c8e2a7d1f95
Revises: e3a91c5d7f24
Create Date: 2026-12-03 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '4c8e2a7d1f95'
down_revision: str | Sequence[str] | None = 'e3a91c5d7f24'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLOT_INDEXES = {"ix_subject_presence_first_slot": "first_slot", "ix_subject_presence_last_slot": "last_slot"}


def upgrade() -> None:
    for name, column in SLOT_INDEXES.items():
        op.drop_index(name, 'subject_presence')
        predicate = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, 'subject_presence', ['tenant_id', 'unit', 'bucket_start', column],
                        postgresql_where=predicate, sqlite_where=predicate)
    with op.batch_alter_table('emotion_scores') as batch_op:
        batch_op.drop_index('ix_emotion_scores_tenant_created')
        batch_op.drop_index('ix_emotion_scores_label_created')


def downgrade() -> None:
    with op.batch_alter_table('emotion_scores') as batch_op:
        batch_op.create_index('ix_emotion_scores_label_created', ['label', 'created_at'], unique=False)
        batch_op.create_index('ix_emotion_scores_tenant_created', ['tenant_id', 'created_at'], unique=False)
    for name, column in SLOT_INDEXES.items():
        op.drop_index(name, 'subject_presence')
        op.create_index(name, 'subject_presence', ['tenant_id', 'unit', 'bucket_start', column])
