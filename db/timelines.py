"""Timelines of emotion results: per local day, week or month, descriptive statistics of the model's
outputs for a subject's entries or a whole tenant's, read from the rollups (``db.rollups``).

The API's ``/v1/subjects/{subject}/emotions`` and ``/v1/analytics/emotions`` answer with
:func:`timeline`, and ``bench/analytics.py`` times the same function. These are statistics of
what a text classifier output, not statements about a person.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from config.valence import LABELS, VALENCE_GROUPS
from db.buckets import next_bucket
from db.rollups import BucketSums, bucketed, distinct_subjects

TOP_EMOTIONS = 3


def local_midnight(day: date, zone: ZoneInfo) -> str:
    return datetime.combine(day, time(), tzinfo=zone).isoformat()


#: Each valence group's labels as positions in ``LABELS``.
_VALENCE_INDICES = {group: tuple(LABELS.index(label) for label in labels) for group, labels in VALENCE_GROUPS.items()}


def valence_split(sums: list[float]) -> dict[str, float]:
    """Each valence group's share of the bucket's summed probabilities (``LABELS`` order; the four add up to 1)."""
    total = sum(sums)
    return {group: sum(sums[i] for i in indices) / total if total else 0.0
            for group, indices in _VALENCE_INDICES.items()}


def bucket_document(start: date, unit: str, zone: ZoneInfo, bucket: BucketSums) -> dict:
    entries = bucket.entries
    means = [total / entries for total in bucket.sums]
    top = sorted(range(len(LABELS)), key=means.__getitem__, reverse=True)[:TOP_EMOTIONS]
    return {
        "start": local_midnight(start, zone),
        "end": local_midnight(next_bucket(start, unit), zone),
        "entries": entries,
        "mean_probabilities": dict(zip(LABELS, means)),
        "share_over_threshold": dict(zip(LABELS, [passes / entries for passes in bucket.passes])),
        "top_emotions": [{"label": LABELS[i], "mean_probability": means[i]} for i in top],
        "valence": valence_split(bucket.sums),
    }


def timeline(session: Session, tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime,
             unit: str, zone: ZoneInfo) -> list[dict]:
    """The buckets of ``[start, end)`` that hold entries, oldest first; the tenant's (``subject`` None)
    also say how many distinct subjects wrote in each."""
    buckets = [bucket_document(day, unit, zone, sums)
               for day, sums in bucketed(session, tenant_id, subject, start, end, unit, zone)]
    if subject is None and buckets:
        subjects = distinct_subjects(session, tenant_id, start, end, unit, zone)
        for bucket in buckets:
            bucket["subjects"] = subjects.get(date.fromisoformat(bucket["start"][:10]), 0)
    return buckets
