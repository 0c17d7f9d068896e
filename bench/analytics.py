"""Timeline reads over a year of entries, in one run: ``python bench/analytics.py [--small]``.

1. A temporary PostgreSQL database on the test server (made and dropped like the tests' own,
   ``tests/support/services.temporary_database``), migrated to head.
2. One tenant with ``--entries`` scored entries over ``--subjects`` subjects and the year before
   ``--end``: succeeded emotion jobs with a subject and an ``occurred_at``, and their 28 score
   rows each, written with ``COPY`` (psycopg2 ``copy_expert``) in chunks.
3. The rollups built as an operator would for existing data: ``db.rollups.rebuild`` (what
   ``python -m api.cli analytics rebuild`` runs), in one transaction, then ``VACUUM ANALYZE``.
4. Reads through ``db.timelines.timeline``, the function the endpoints answer with, each in a
   session of its own: one random subject's year by day, and the tenant-wide year by week (with
   distinct subjects per week), in America/New_York; p50 and p99 of each. Between them, one
   random subject's insights (``db.insights``, 7 days against the 30 before, ending at ``--end``)
   as ``GET /v1/subjects/{subject}/insights`` answers them, document included.

Goals: a subject's year p99 <= 20 ms; a subject's insights p99 <= 50 ms; the tenant-wide year
p99 <= 250 ms.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.valence import LABELS  # noqa: E402

GOALS_MS = {"subject year by day": 20.0, "subject insights": 50.0, "tenant year by week": 250.0}
ZONE = ZoneInfo("America/New_York")
ENTRIES_PER_COPY = 20_000
#: Label thresholds like the model's: a probability over 0.5 counts as passing.
THRESHOLD = 0.5


def entry_scores(chance: random.Random) -> list[float]:
    """Probabilities with one or two labels high, the rest low, as a multi-label classifier gives."""
    scores = [chance.random() * 0.1 for _ in LABELS]
    for index in chance.sample(range(len(LABELS)), chance.choice((1, 1, 2))):
        scores[index] = 0.4 + chance.random() * 0.6
    return scores


def copy_chunk(cursor, tenant_id: uuid.UUID, subjects: list[str], count: int, start: datetime,
               chance: random.Random) -> None:
    jobs, scores = io.StringIO(), io.StringIO()
    year_s = 365 * 86400
    for _ in range(count):
        job_id = uuid.uuid4()
        occurred = start + timedelta(seconds=chance.randrange(year_s))
        probabilities = entry_scores(chance)
        top = LABELS[max(range(len(LABELS)), key=probabilities.__getitem__)]
        jobs.write(f"{job_id}\t{tenant_id}\temotion\tsucceeded\tcpu\t{{}}\t{{}}\t"
                   f"{json.dumps({'top_emotion': top})}\t{occurred.isoformat()}\t{occurred.isoformat()}\t1\t"
                   f"{chance.choice(subjects)}\t{occurred.isoformat()}\n")
        for label, p in zip(LABELS, probabilities):
            scores.write(f"{job_id}\t{label}\t{tenant_id}\t{p:.6f}\t{'t' if label == top else 'f'}\t"
                         f"{'t' if p > THRESHOLD else 'f'}\t{occurred.isoformat()}\n")
    jobs.seek(0)
    scores.seek(0)
    cursor.copy_expert("COPY jobs (id, tenant_id, type, status, queue, input, options, result, created_at, "
                       "finished_at, attempts, subject, occurred_at) FROM STDIN", jobs)
    cursor.copy_expert("COPY emotion_scores (job_id, label, tenant_id, probability, is_top, above_threshold, "
                       "created_at) FROM STDIN", scores)


def seed(engine, tenant_id: uuid.UUID, entries: int, subject_count: int, start: datetime) -> list[str]:
    chance = random.Random(15)
    subjects = [f"subject-{n:05d}" for n in range(subject_count)]
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            for done in range(0, entries, ENTRIES_PER_COPY):
                copy_chunk(cursor, tenant_id, subjects, min(ENTRIES_PER_COPY, entries - done), start, chance)
                connection.commit()
            cursor.execute("ANALYZE jobs")
            cursor.execute("ANALYZE emotion_scores")
        connection.commit()
    finally:
        connection.close()
    return subjects


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def measure(sessions, read, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        with sessions() as session:
            started = time.perf_counter()
            read(session)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="20,000 entries over 200 subjects")
    parser.add_argument("--rounds", type=int, default=200, help="reads of a subject's year")
    parser.add_argument("--tenant-rounds", type=int, default=50, help="reads of the tenant-wide year")
    parser.add_argument("--end", default="2026-12-01", help="the end of the year of entries (a date)")
    args = parser.parse_args()
    entries, subject_count = (20_000, 200) if args.small else (args.entries, args.subjects)

    from sqlalchemy import select

    from db.insights import insights_document, subject_insights
    from db.migrate import upgrade_to_head
    from db.models import Tenant, emotion_rollups
    from db.rollups import rebuild
    from db.session import get_engine, get_sessionmaker, session_scope
    from db.timelines import timeline
    from tests.support.services import temporary_database

    end = datetime.combine(datetime.fromisoformat(args.end).date(), datetime.min.time(), tzinfo=ZONE)
    start = end.replace(year=end.year - 1)
    with temporary_database() as url:
        upgrade_to_head(url)
        tenant_id = uuid.uuid4()
        with session_scope(url) as session:
            session.add(Tenant(id=tenant_id, name="bench-analytics"))
        print(f"seeding {entries:,} entries over {subject_count:,} subjects, {start.date()} to {end.date()}, "
              "with COPY ...", flush=True)
        started = time.perf_counter()
        subjects = seed(get_engine(url), tenant_id, entries, subject_count, start.astimezone(UTC))
        print(f"  seeded in {time.perf_counter() - started:.1f}s", flush=True)
        started = time.perf_counter()
        with session_scope(url) as session:
            rows = rebuild(session, tenant_id)
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE emotion_rollups")  # what autovacuum does in time
        print(f"  rollups rebuilt in {time.perf_counter() - started:.1f}s: {rows:,} rows", flush=True)

        sessions = get_sessionmaker(url)
        chance = random.Random(7)
        with sessions() as session:
            assert session.scalar(select(emotion_rollups.c.entries).limit(1)) is not None
        reads = {
            "subject year by day": (lambda session: timeline(session, tenant_id, chance.choice(subjects), start, end,
                                                             "day", ZONE), args.rounds),
            "subject insights": (lambda session: insights_document(subject_insights(
                session, tenant_id, chance.choice(subjects), timedelta(days=7), timedelta(days=30), end, 5)),
                args.rounds),
            "tenant year by week": (lambda session: timeline(session, tenant_id, None, start, end, "week", ZONE),
                                    args.tenant_rounds),
        }
        for name, (read, rounds) in reads.items():
            measure(sessions, read, 3)
            p50, p99 = percentiles(measure(sessions, read, rounds))
            goal = GOALS_MS[name]
            print(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {rounds} reads "
                  f"(goal p99 <= {goal:g} ms): {'met' if p99 <= goal else 'NOT met'}", flush=True)


if __name__ == "__main__":
    main()
