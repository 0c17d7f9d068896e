"""Subjects present per UTC week and month, and their counts

`subject_presence` says which subjects of a tenant have entries in each UTC week (from Monday)
and month, with the first and last 15-minute slot of them, the subject's last slot in the bucket
before and its first in the bucket after; `subject_counts` holds how many
subjects each of those buckets has. Both are filled here from the subjects' rows of
`emotion_rollups`, as `python -m api.cli analytics rebuild` would.

Revision ID: e3a91c5d7f24
Revises: b7e2d94c1a58
Create Date: 2026-12-02 15:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'e3a91c5d7f24'
down_revision: str | Sequence[str] | None = 'b7e2d94c1a58'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNITS = ("week", "month")


def bucket_sql(dialect: str, unit: str) -> str:
    if dialect == "postgresql":
        return f"date_trunc('{unit}', slot_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    if unit == "week":
        return "date(slot_start, '-6 days', 'weekday 1') || ' 00:00:00.000000'"
    return "strftime('%Y-%m-01 00:00:00.000000', slot_start)"


def shifted_sql(dialect: str, unit: str, step: int) -> str:
    amount = f"{abs(step) * 7} days" if unit == "week" else f"{abs(step)} month"
    sign = "-" if step < 0 else "+"
    if dialect == "postgresql":
        return f"((bucket AT TIME ZONE 'UTC') {sign} interval '{amount}') AT TIME ZONE 'UTC'"
    return f"date(bucket, '{sign}{amount}') || ' 00:00:00.000000'"


def upgrade() -> None:
    op.create_table(
        'subject_presence',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('unit', sa.String(length=8), nullable=False),
        sa.Column('bucket_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('first_slot', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_slot', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_before', sa.DateTime(timezone=True), nullable=True),
        sa.Column('first_after', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('tenant_id', 'subject', 'unit', 'bucket_start', name=op.f('pk_subject_presence')),
    )
    op.create_index('ix_subject_presence_first_slot', 'subject_presence',
                    ['tenant_id', 'unit', 'bucket_start', 'first_slot'])
    op.create_index('ix_subject_presence_last_slot', 'subject_presence',
                    ['tenant_id', 'unit', 'bucket_start', 'last_slot'])
    op.create_table(
        'subject_counts',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('unit', sa.String(length=8), nullable=False),
        sa.Column('bucket_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('subjects', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'unit', 'bucket_start', name=op.f('pk_subject_counts')),
    )
    dialect = op.get_bind().dialect.name
    for unit in UNITS:
        op.execute(f"""
            INSERT INTO subject_presence (tenant_id, subject, unit, bucket_start, first_slot, last_slot,
                                          last_before, first_after)
            SELECT tenant_id, subject, '{unit}', bucket, first_slot, last_slot,
                   CASE WHEN LAG(bucket) OVER w = {shifted_sql(dialect, unit, -1)} THEN LAG(last_slot) OVER w END,
                   CASE WHEN LEAD(bucket) OVER w = {shifted_sql(dialect, unit, 1)} THEN LEAD(first_slot) OVER w END
            FROM (SELECT tenant_id, subject, {bucket_sql(dialect, unit)} AS bucket, MIN(slot_start) AS first_slot,
                         MAX(slot_start) AS last_slot
                  FROM emotion_rollups WHERE subject <> '' AND entries > 0
                  GROUP BY tenant_id, subject, bucket) AS spans
            WINDOW w AS (PARTITION BY tenant_id, subject ORDER BY bucket)
        """)
    op.execute("""
        INSERT INTO subject_counts (tenant_id, unit, bucket_start, subjects)
        SELECT tenant_id, unit, bucket_start, COUNT(*) FROM subject_presence GROUP BY tenant_id, unit, bucket_start
    """)


def downgrade() -> None:
    op.drop_table('subject_counts')
    op.drop_index('ix_subject_presence_last_slot', 'subject_presence')
    op.drop_index('ix_subject_presence_first_slot', 'subject_presence')
    op.drop_table('subject_presence')
