"""Timelines of emotion results: per local day, week or month, descriptive statistics of the model's
outputs for a subject's entries or a whole tenant's, read from the rollups (``db.rollups``).

The API's ``/v1/subjects/{subject}/emotions`` and ``/v1/analytics/emotions`` answer with
:func:`timeline`, and ``bench/analytics.py`` times the same function. These are statistics of
what a text classifier output, not statements about a person.
"""
from __future__ import annotations

import heapq
import uuid
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from config.valence import VALENCE_GROUPS
from db.buckets import next_bucket
from db.rollups import Aggregate, bucketed, distinct_subjects

TOP_EMOTIONS = 3


def local_midnight(day: date, zone: ZoneInfo) -> str:
    return datetime.combine(day, time(), tzinfo=zone).isoformat()


def valence_split(aggregate: Aggregate) -> dict[str, float]:
    """Each valence group's share of the bucket's summed probabilities (the four add up to 1)."""
    total = sum(aggregate.sums.values())
    return {group: sum(aggregate.sums[label] for label in labels) / total if total else 0.0
            for group, labels in VALENCE_GROUPS.items()}


def bucket_document(start: date, unit: str, zone: ZoneInfo, aggregate: Aggregate) -> dict:
    entries = aggregate.entries
    means = {label: total / entries for label, total in aggregate.sums.items()}
    top = heapq.nlargest(TOP_EMOTIONS, means, key=means.__getitem__)
    return {
        "start": local_midnight(start, zone),
        "end": local_midnight(next_bucket(start, unit), zone),
        "entries": entries,
        "mean_probabilities": means,
        "share_over_threshold": {label: passes / entries for label, passes in aggregate.passes.items()},
        "top_emotions": [{"label": label, "mean_probability": means[label]} for label in top],
        "valence": valence_split(aggregate),
    }


def timeline(session: Session, tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime,
             unit: str, zone: ZoneInfo) -> list[dict]:
    """The buckets of ``[start, end)`` that hold entries, oldest first; the tenant's (``subject`` None)
    also say how many distinct subjects wrote in each."""
    buckets = [bucket_document(day, unit, zone, aggregate)
               for day, aggregate in bucketed(session, tenant_id, subject, start, end, unit, zone)]
    if subject is None and buckets:
        subjects = distinct_subjects(session, tenant_id, start, end, unit, zone)
        for bucket in buckets:
            bucket["subjects"] = subjects.get(date.fromisoformat(bucket["start"][:10]), 0)
    return buckets
