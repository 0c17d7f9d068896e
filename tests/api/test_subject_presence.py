"""Distinct subjects per local week and month, read from ``subject_presence``, against a count from
the entries themselves: many zones (half and quarter hours, +14 and -11, daylight saving), entries
crowded around UTC week and month boundaries, then entries taken out and a subject erased."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from config.valence import LABELS
from db.buckets import local_bucket, slot_of
from db.deletion import delete_subject_rollups
from db.models import subject_counts, subject_presence
from db.rollups import ScoredEntry, add_results, distinct_subjects
from db.session import session_scope
from db.subject_presence import rebuild

ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "Australia/Sydney",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", "Atlantic/Azores")
FIRST = datetime(2026, 2, 20, tzinfo=UTC)
LAST = datetime(2026, 5, 10, tzinfo=UTC)


def emotion(label: str) -> dict:
    return {"probabilities": {name: 0.9 if name == label else 0.02 for name in LABELS}, "emotions": [label]}


def moments(chance: random.Random, count: int) -> list[datetime]:
    """Half anywhere in the range, half within 15 hours of a UTC Monday or first of a month."""
    edges = [day for day in (FIRST + timedelta(days=n) for n in range((LAST - FIRST).days))
             if day.weekday() == 0 or day.day == 1]
    found = []
    for n in range(count):
        if n % 2:
            found.append(FIRST + (LAST - FIRST) * chance.random())
        else:
            found.append(chance.choice(edges) + timedelta(minutes=chance.uniform(-15 * 60, 15 * 60)))
    return found


def expected(entries: list[ScoredEntry], start: datetime, end: datetime, unit: str, zone: ZoneInfo) -> dict:
    seen = defaultdict(set)
    for entry in entries:
        slot = slot_of(entry.occurred_at)
        if entry.subject and start <= slot < end:
            seen[local_bucket(slot, zone, unit)].add(entry.subject)
    return {bucket: len(subjects) for bucket, subjects in seen.items()}


def check_every_zone(session, tenant_id, entries: list[ScoredEntry]) -> None:
    for name in ZONES:
        zone = ZoneInfo(name)
        for unit in ("week", "month"):
            for start, end in ((datetime(2026, 2, 23, tzinfo=zone), datetime(2026, 5, 4, tzinfo=zone)),
                               (datetime(2026, 3, 1, tzinfo=zone), datetime(2026, 5, 1, tzinfo=zone)),
                               (datetime(2026, 2, 25, 13, tzinfo=zone), datetime(2026, 4, 29, 7, 45, tzinfo=zone))):
                start, end = start.astimezone(UTC), end.astimezone(UTC)
                assert distinct_subjects(session, tenant_id, start, end, unit, zone) == \
                    expected(entries, start, end, unit, zone), (name, unit, start)


def presence_rows(session, tenant_id) -> tuple[set, set]:
    rows = {tuple(row) for row in session.execute(select(subject_presence).where(
        subject_presence.c.tenant_id == tenant_id)).all()}
    counts = {tuple(row) for row in session.execute(select(subject_counts).where(
        subject_counts.c.tenant_id == tenant_id)).all()}
    return rows, counts


@pytest.mark.parametrize("seed", [3, 11])
def test_distinct_subjects_per_local_week_and_month_equal_a_count_of_the_entries(settings, make_tenant, seed):
    chance = random.Random(seed)
    tenant_id = make_tenant().tenant_id
    entries = [ScoredEntry(tenant_id, chance.choice([f"s{n}" for n in range(14)] + [None]), when,
                           emotion(chance.choice(LABELS))) for when in moments(chance, 400)]
    for start in range(0, len(entries), 37):
        with session_scope(settings.database_url) as session:
            add_results(session, entries[start:start + 37])
    with session_scope(settings.database_url) as session:
        check_every_zone(session, tenant_id, entries)

    taken_out = chance.sample(entries, 120)
    with session_scope(settings.database_url) as session:
        add_results(session, taken_out, sign=-1)
        delete_subject_rollups(session, tenant_id, "s3")
    left = [entry for entry in entries if entry not in taken_out and entry.subject != "s3"]
    with session_scope(settings.database_url) as session:
        check_every_zone(session, tenant_id, left)
        kept = presence_rows(session, tenant_id)
        rebuild(session, tenant_id)
        assert presence_rows(session, tenant_id) == kept
        assert not any(row[1] == "s3" for row in kept[0])
