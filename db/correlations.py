"""Which labels go with which metadata tags: entries read with their tags and the labels that passed.

A tag is a value of a list-valued metadata key (``{"tags": ["work", "gym"]}`` gives ``work`` and
``gym``) or a string pair written ``key=value`` (``{"place": "home"}`` gives ``place=home``).
Correlations need each entry's tags, which the rollups do not keep, so they read the entries
themselves: the most recent :data:`MAX_ENTRIES` succeeded entries with an emotion result in the
range, and the labels over their thresholds from ``emotion_scores``. The statistics are
``db.label_statistics.over_represented``; docs/analytics.md gives the formulas.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from config.valence import LABELS
from db.documents import iso_datetime
from db.label_statistics import FAMILY_ALPHA, TagFinding, over_represented
from db.models import EmotionScore, Job, JobStatus

MAX_ENTRIES = 50_000
MAX_FINDINGS = 50
DESCRIPTION = ("Descriptive statistics of the emotion model's outputs: labels that passed their thresholds more "
               "often in entries carrying a tag than in entries without it. An association, not a cause, and "
               "nothing about the person.")


def tags_of(metadata: dict | None) -> frozenset[str]:
    tags = set()
    for key, value in (metadata or {}).items():
        if isinstance(value, list):
            tags.update(item for item in value if isinstance(item, str))
        elif isinstance(value, str):
            tags.add(f"{key}={value}")
    return frozenset(tags)


def _entries_query(tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime):
    query = select(Job.id).where(
        Job.tenant_id == tenant_id, Job.status == JobStatus.SUCCEEDED,
        Job.occurred_at >= start, Job.occurred_at < end, exists().where(EmotionScore.job_id == Job.id))
    if subject is not None:
        query = query.where(Job.subject == subject)
    return query.order_by(Job.occurred_at.desc()).limit(MAX_ENTRIES)


def tagged_entries(session: Session, tenant_id: uuid.UUID, subject: str | None, start: datetime,
                   end: datetime) -> list[tuple[frozenset[str], frozenset[str]]]:
    """Each entry's tags and the labels that passed their thresholds in it (two queries)."""
    chosen = _entries_query(tenant_id, subject, start, end).subquery()
    metadata = session.execute(select(Job.id, Job.entry_metadata).where(Job.id.in_(select(chosen.c.id)))).all()
    passed: dict[uuid.UUID, set[str]] = defaultdict(set)
    for job_id, label in session.execute(select(EmotionScore.job_id, EmotionScore.label).where(
            EmotionScore.job_id.in_(select(chosen.c.id)), EmotionScore.above_threshold.is_(True))):
        passed[job_id].add(label)
    return [(tags_of(entry_metadata), frozenset(passed.get(job_id, ()))) for job_id, entry_metadata in metadata]


def finding_document(finding: TagFinding) -> dict:
    found = finding.lift
    return {
        "tag": finding.tag,
        "label": finding.label,
        "lift": round(found.lift, 4),
        "lift_interval": [round(bound, 4) for bound in found.interval],
        "entries_with_tag": found.with_tag,
        "label_passes_with_tag": found.passes_with,
        "entries_without_tag": found.without_tag,
        "label_passes_without_tag": found.passes_without,
    }


def correlations(session: Session, tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime,
                 min_support: int) -> dict:
    """The answer of the correlations endpoints: the tag-label pairs found, strongest lower bound first."""
    entries = tagged_entries(session, tenant_id, subject, start, end)
    findings, tested = over_represented(entries, list(LABELS), min_support)
    return {
        **({"subject": subject} if subject is not None else {}),
        "description": DESCRIPTION,
        "from": iso_datetime(start),
        "to": iso_datetime(end),
        "entries": len(entries),
        "entries_limit": MAX_ENTRIES,
        "min_support": min_support,
        "pairs_tested": tested,
        "familywise_confidence": 1 - FAMILY_ALPHA,
        "correlations": [finding_document(finding) for finding in findings[:MAX_FINDINGS]],
    }
