"""A subject's recent window against its own baseline, read from ``emotion_rollups`` only.

The window is ``[end - window, end)`` and the baseline the period just before it,
``[end - window - baseline, end - window)``; ``end`` is rounded up to the rollups' 15-minute
slot, so both periods are sums of whole slots (one indexed range read, never raw scores).
The same document answers ``GET /v1/subjects/{subject}/insights`` and is the ``data`` of the
``subject.shift_detected`` webhook. docs/analytics.md gives the formulas.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from config.valence import LABELS
from db.buckets import SLOT, slot_of
from db.documents import iso_datetime
from db.label_statistics import LabelChange, LabelSums, compare_periods, shift_score
from db.models import emotion_rollups
from db.rollups import VALUE_COLUMNS, Aggregate

#: Labels listed under ``rose`` and under ``fell``, strongest first.
TOP_CHANGES = 5
DESCRIPTION = ("Descriptive statistics of the emotion model's outputs for this subject's entries: the window "
               "against the subject's own baseline. They describe model outputs, not the person.")


def window_end(moment: datetime) -> datetime:
    """``moment`` rounded up to a slot boundary, so entries up to ``moment`` fall inside the window."""
    start = slot_of(moment)
    return start if start == moment else start + SLOT


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    entries: int
    sums: dict[str, LabelSums]

    @classmethod
    def of(cls, start: datetime, end: datetime, aggregate: Aggregate) -> Period:
        return cls(start, end, aggregate.entries, label_sums(aggregate))


def label_sums(aggregate: Aggregate) -> dict[str, LabelSums]:
    return {label: LabelSums(aggregate.entries, aggregate.sums[label], aggregate.squares[label],
                             aggregate.passes[label]) for label in LABELS}


@dataclass(frozen=True)
class Insights:
    subject: str
    window: Period
    baseline: Period
    min_entries: int

    @property
    def enough_entries(self) -> bool:
        return min(self.window.entries, self.baseline.entries) >= self.min_entries

    @property
    def shift_score(self) -> float | None:
        return shift_score(self.window.sums, self.baseline.sums) if self.enough_entries else None

    def changes(self) -> list[LabelChange]:
        return compare_periods(self.window.sums, self.baseline.sums) if self.enough_entries else []


def period_totals(session: Session, tenant_id: uuid.UUID, subject: str, start: datetime, split: datetime,
                  end: datetime) -> tuple[Aggregate, Aggregate]:
    """The sums of ``[split, end)`` and of ``[start, split)``, in one read of the subject's slots."""
    in_window = case((emotion_rollups.c.slot_start >= split, 1), else_=0).label("in_window")
    rows = session.execute(
        select(in_window, *[func.sum(emotion_rollups.c[name]) for name in VALUE_COLUMNS])
        .where(emotion_rollups.c.tenant_id == tenant_id, emotion_rollups.c.subject == subject,
               emotion_rollups.c.slot_start >= start, emotion_rollups.c.slot_start < end)
        .group_by(in_window)).all()
    parts = {row[0]: Aggregate.of_row(row[1:]) for row in rows}
    return parts.get(1, Aggregate()), parts.get(0, Aggregate())


def subject_insights(session: Session, tenant_id: uuid.UUID, subject: str, window: timedelta, baseline: timedelta,
                     end: datetime, min_entries: int) -> Insights:
    end = window_end(end)
    split, start = end - window, end - window - baseline
    window_sums, baseline_sums = period_totals(session, tenant_id, subject, start, split, end)
    return Insights(subject, Period.of(split, end, window_sums), Period.of(start, split, baseline_sums), min_entries)


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def change_document(change: LabelChange) -> dict:
    return {
        "label": change.label,
        "effect_size": _rounded(change.effect_size),
        "effect_size_interval": [_rounded(bound) for bound in change.interval] if change.interval else None,
        "window_mean_probability": _rounded(change.window.mean),
        "baseline_mean_probability": _rounded(change.baseline.mean),
        "window_share_over_threshold": _rounded(change.window.share),
        "baseline_share_over_threshold": _rounded(change.baseline.share),
    }


def period_document(period: Period) -> dict:
    return {"from": iso_datetime(period.start), "to": iso_datetime(period.end), "entries": period.entries}


def insights_document(insights: Insights) -> dict:
    """What the API answers: periods, evidence rule, overall shift and the labels that moved most.

    ``rose`` / ``fell`` hold only labels whose interval excludes zero, strongest first.
    """
    changes = insights.changes()
    rose = sorted((c for c in changes if c.direction == "rose"), key=lambda c: -c.effect_size)
    fell = sorted((c for c in changes if c.direction == "fell"), key=lambda c: c.effect_size)
    return {
        "subject": insights.subject,
        "description": DESCRIPTION,
        "window": period_document(insights.window),
        "baseline": period_document(insights.baseline),
        "min_entries": insights.min_entries,
        "enough_entries": insights.enough_entries,
        "shift_score": _rounded(insights.shift_score),
        "rose": [change_document(change) for change in rose[:TOP_CHANGES]],
        "fell": [change_document(change) for change in fell[:TOP_CHANGES]],
    }
