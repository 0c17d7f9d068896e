"""Emotion rollups per subject and 15-minute UTC slot; the analytics:read scope

`emotion_rollups` adds up emotion results per tenant, subject (and the tenant-wide series, subject
'') and 15-minute UTC slot: entries, and per label the sum of probabilities, the sum of their
squares and how many passed the label's threshold. It starts empty: `python -m api.cli
analytics rebuild` fills it from `emotion_scores`. Keys that could read jobs may read analytics.

Revision ID: 9f4e1b6c3a07
Revises: 5d2c7a9e41b3
Create Date: 2026-12-02 01:30:00

"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '9f4e1b6c3a07'
down_revision: str | Sequence[str] | None = '5d2c7a9e41b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The labels as they were when this table was made (``config.valence.LABELS``).
LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
SCOPE = "analytics:read"


def label_columns() -> list[sa.Column]:
    columns = []
    for label in LABELS:
        columns += [sa.Column(f"p_{label}", sa.Float(), nullable=False),
                    sa.Column(f"q_{label}", sa.Float(), nullable=False),
                    sa.Column(f"t_{label}", sa.Integer(), nullable=False)]
    return columns


def rewrite_scopes(change) -> None:
    connection = op.get_bind()
    keys = sa.table("api_keys", sa.column("id"), sa.column("scopes", sa.JSON()))
    for key_id, scopes in connection.execute(sa.select(keys.c.id, keys.c.scopes)).all():
        scopes = json.loads(scopes) if isinstance(scopes, str) else list(scopes or [])
        changed = change(scopes)
        if changed != scopes:
            connection.execute(sa.update(keys).where(keys.c.id == key_id).values(scopes=changed))


def upgrade() -> None:
    op.create_table(
        'emotion_rollups',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        *label_columns(),
        sa.PrimaryKeyConstraint('tenant_id', 'subject', 'slot_start', name=op.f('pk_emotion_rollups')),
    )
    op.create_index('ix_emotion_rollups_tenant_slot', 'emotion_rollups', ['tenant_id', 'slot_start', 'subject'])
    rewrite_scopes(lambda scopes: sorted({*scopes, SCOPE}) if "jobs:read" in scopes else scopes)


def downgrade() -> None:
    rewrite_scopes(lambda scopes: [scope for scope in scopes if scope != SCOPE])
    op.drop_index('ix_emotion_rollups_tenant_slot', 'emotion_rollups')
    op.drop_table('emotion_rollups')
