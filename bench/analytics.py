"""Timeline reads over a year of entries, in one run: ``python bench/analytics.py [--small]``.

1. A temporary PostgreSQL database on the test server (made and dropped like the tests' own,
   ``tests/support/services.temporary_database``), migrated to head.
2. One tenant with ``--entries`` scored entries over ``--subjects`` subjects and the year before
   ``--end``: succeeded emotion jobs with a subject and an ``occurred_at``, and their 28 score
   rows each, generated inside PostgreSQL (``generate_series``, ``INSERT … SELECT``) with the
   bulk tables' indexes built after the rows, then ``VACUUM ANALYZE``.
3. The rollups built in SQL from the generated entries, and the subjects' presence per UTC week and
   month from them (``db.subject_presence.rebuild``); ``--check`` compares the rollups with
   ``db.rollups.rebuild`` (what ``python -m api.cli analytics rebuild`` runs) of the same scores.
4. Reads through ``db.timelines.timeline``, the function the endpoints answer with, each in a
   session of its own: one random subject's year by day, and the tenant-wide year by week (with
   distinct subjects per week), in America/New_York; p50 and p99 of each. Between them, one
   random subject's insights (``db.insights``, 7 days against the 30 before, ending at ``--end``)
   as ``GET /v1/subjects/{subject}/insights`` answers them, document included.

5. With ``--bulk``: ``bench/bulk.py --subjects 1000`` (its own stack and database), whose items
   carry subjects and dates, so its end-to-end ratio is measured with rollups and presence rows
   written; its output follows.

Goals: a subject's year p99 <= 20 ms; a subject's insights p99 <= 50 ms; the tenant-wide year
p99 <= 250 ms; the bulk ratio with rollups >= 0.85.
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.valence import LABELS  # noqa: E402
from db.models import TENANT_SERIES  # noqa: E402
from db.rollups import VALUE_COLUMNS  # noqa: E402

GOALS_MS = {"subject year by day": 20.0, "subject insights": 50.0, "tenant year by week": 250.0}
ZONE = ZoneInfo("America/New_York")
#: Label thresholds like the model's: a probability over 0.5 counts as passing.
THRESHOLD = 0.5


#: Loaded in bulk: its indexes and primary key are dropped before the rows and built after (28 rows an entry).
BULK_TABLES = ("emotion_scores",)


def entries_sql(entries: int, subjects: int) -> str:
    """The entries, in the database: a subject, a moment in the year and 28 probabilities each, one or
    two labels high and the rest low, as a multi-label classifier gives; ``top`` is the highest's index."""
    return f"""
        CREATE UNLOGGED TABLE seed_entries AS
        SELECT gen_random_uuid() AS id, 'subject-' || lpad(floor(random() * {subjects})::int::text, 5, '0') AS subject,
               CAST(:start AS timestamptz) + random() * interval '365 days' AS occurred,
               ARRAY(SELECT CASE WHEN k = h1 THEN p1 WHEN k = h2 THEN p2 ELSE random() * 0.1 END
                     FROM generate_series(0, {len(LABELS) - 1}) k ORDER BY k) AS probs,
               CASE WHEN h2 < 0 OR h2 = h1 OR p1 >= p2 THEN h1 ELSE h2 END AS top
        FROM (SELECT n, floor(random() * {len(LABELS)})::int AS h1,
                     CASE WHEN random() < 1.0 / 3 THEN floor(random() * {len(LABELS)})::int ELSE -1 END AS h2,
                     0.4 + random() * 0.6 AS p1, 0.4 + random() * 0.6 AS p2
              FROM generate_series(1, {entries}) n) AS drawn
    """


def labels_sql() -> str:
    return "ARRAY[" + ", ".join(f"'{label}'" for label in LABELS) + "]"


JOBS_SQL = f"""
    INSERT INTO jobs (id, tenant_id, type, status, queue, input, options, result, created_at, finished_at, attempts,
                      subject, occurred_at)
    SELECT id, :tenant_id, 'emotion', 'succeeded', 'cpu', '{{}}', '{{}}',
           jsonb_build_object('top_emotion', ({labels_sql()})[top + 1]), occurred, occurred, 1, subject, occurred
    FROM seed_entries
"""
SCORES_SQL = f"""
    INSERT INTO emotion_scores (job_id, label, tenant_id, probability, is_top, above_threshold, created_at)
    SELECT e.id, ({labels_sql()})[k + 1], :tenant_id, e.probs[k + 1], k = e.top, e.probs[k + 1] > {THRESHOLD},
           e.occurred
    FROM seed_entries e CROSS JOIN generate_series(0, {len(LABELS) - 1}) k
"""


def rollups_sql(per_subject: bool) -> str:
    """The rollups of the seeded entries, from their probability arrays (no join of 28 score rows each)."""
    sums = []
    for k in range(1, len(LABELS) + 1):
        sums += [f"SUM(probs[{k}])", f"SUM(probs[{k}] * probs[{k}])",
                 f"SUM(CASE WHEN probs[{k}] > {THRESHOLD} THEN 1 ELSE 0 END)"]
    return f"""
        INSERT INTO emotion_rollups (tenant_id, subject, slot_start, {", ".join(VALUE_COLUMNS)})
        SELECT :tenant_id, {"subject" if per_subject else f"'{TENANT_SERIES}'"},
               to_timestamp(floor(extract(epoch FROM occurred) / 900) * 900) AS slot, COUNT(*), {", ".join(sums)}
        FROM seed_entries GROUP BY {"subject, " if per_subject else ""}slot
    """


def drop_indexes(cursor) -> list[str]:
    """Drop the bulk tables' indexes and primary keys (a throwaway database); returns what rebuilds them."""
    cursor.execute("""
        SELECT format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', t.relname, c.conname, pg_get_constraintdef(c.oid)),
               format('ALTER TABLE %%I DROP CONSTRAINT %%I', t.relname, c.conname)
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE t.relname = ANY(%s) AND c.contype IN ('p', 'u')
    """, (list(BULK_TABLES),))
    constraints = cursor.fetchall()
    cursor.execute("""
        SELECT i.indexdef, format('DROP INDEX %%I', i.indexname) FROM pg_indexes i
        WHERE i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
    """, (list(BULK_TABLES),))
    indexes = cursor.fetchall()
    for _, drop in constraints + indexes:
        cursor.execute(drop)
    return [build for build, _ in constraints + indexes]


def seed(engine, tenant_id: uuid.UUID, entries: int, subject_count: int, start: datetime) -> list[str]:
    """Jobs, score rows and rollups generated inside PostgreSQL (``generate_series``, ``INSERT … SELECT``),
    indexes built after the rows; the rollups are what the workers would have written (``--check``)."""
    connection = engine.raw_connection()
    params = {"tenant_id": str(tenant_id), "start": start.isoformat()}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute("SET maintenance_work_mem = '512MB'")
            cursor.execute("SELECT setseed(0.15)")
            for statement in (entries_sql(entries, subject_count), JOBS_SQL):
                cursor.execute(statement.replace(":tenant_id", "%(tenant_id)s").replace(":start", "%(start)s"),
                               params)
            rebuilds = drop_indexes(cursor)
            cursor.execute(SCORES_SQL.replace(":tenant_id", "%(tenant_id)s"), params)
            for statement in rebuilds:
                cursor.execute(statement)
            for per_subject in (True, False):
                cursor.execute(rollups_sql(per_subject).replace(":tenant_id", "%(tenant_id)s"), params)
            cursor.execute("DROP TABLE seed_entries")
        connection.commit()
    finally:
        connection.close()
    return [f"subject-{n:05d}" for n in range(subject_count)]


def check_rollups(session, tenant_id: uuid.UUID) -> None:
    """The seeded rollups against ``db.rollups.rebuild`` of the same scores (rolled back): same keys,
    same counts, sums equal to rounding."""
    from sqlalchemy import text

    from db.rollups import rebuild

    session.execute(text("CREATE TEMP TABLE seeded AS SELECT * FROM emotion_rollups"))
    rebuild(session, tenant_id)
    differences = ", ".join(f"MAX(ABS(a.{name} - b.{name}))" for name in VALUE_COLUMNS)
    row = session.execute(text(f"""
        SELECT COUNT(*) FILTER (WHERE a.slot_start IS NULL OR b.slot_start IS NULL), COUNT(*), {differences}
        FROM seeded a FULL JOIN emotion_rollups b USING (tenant_id, subject, slot_start)
    """)).one()
    unmatched, rows, worst = row[0], row[1], max(value or 0 for value in row[2:])
    session.rollback()
    if unmatched or worst > 1e-9:
        raise SystemExit(f"seeded rollups differ from rebuild: {unmatched} unmatched rows, largest difference {worst}")
    print(f"  check: the seeded rollups equal db.rollups.rebuild ({rows:,} rows)", flush=True)


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
    parser.add_argument("--check", action="store_true",
                        help="check the seeded rollups against db.rollups.rebuild (slow at a million entries)")
    parser.add_argument("--end", default="2026-12-01", help="the end of the year of entries (a date)")
    parser.add_argument("--bulk", action="store_true",
                        help="then run bench/bulk.py --subjects 1000: its ratio with rollups written")
    args = parser.parse_args()
    entries, subject_count = (20_000, 200) if args.small else (args.entries, args.subjects)

    from sqlalchemy import func, select

    from db import subject_presence
    from db.insights import insights_document, subject_insights
    from db.migrate import upgrade_to_head
    from db.models import Tenant, emotion_rollups
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
              "in the database ...", flush=True)
        started = time.perf_counter()
        subjects = seed(get_engine(url), tenant_id, entries, subject_count, start.astimezone(UTC))
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does in time
        with session_scope(url) as session:
            presence_rows = subject_presence.rebuild(session, tenant_id)
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE subject_presence")
            connection.exec_driver_sql("VACUUM ANALYZE subject_counts")
        with session_scope(url) as session:
            rows = session.scalar(select(func.count()).select_from(emotion_rollups))
        print(f"  {presence_rows:,} presence rows", flush=True)
        print(f"  seeded in {time.perf_counter() - started:.1f}s: {rows:,} rollup rows", flush=True)
        if args.check:
            with get_sessionmaker(url)() as session:
                check_rollups(session, tenant_id)

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
    if args.bulk:
        print("bench/bulk.py --subjects 1000:", flush=True)
        subprocess.run([sys.executable, str(Path(__file__).with_name("bulk.py")), "--subjects", "1000"], check=True)


if __name__ == "__main__":
    main()
