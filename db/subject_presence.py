"""Which subjects wrote in each UTC week and month of a tenant, kept as results are stored, so that a
tenant-wide timeline counts distinct subjects per local week or month without reading every
subject's slots (``db.rollups.distinct_subjects``).

A row of ``subject_presence`` says that a subject has entries in one UTC week (from Monday) or
month, and holds the first and last slot of them; ``subject_counts`` holds how many subjects each
of those UTC buckets has. A local week or month starts and ends at most 14 hours away from the
UTC one of the same date, so it is that UTC bucket with a strip cut off or added at each end. The
subjects of the local bucket are then the UTC bucket's count, less the subjects whose entries
there all lie in a cut strip (last slot before the local start, or first slot at or after the
local end), plus the subjects of the neighbouring UTC bucket whose entries reach into an added
strip and who have no entry in the UTC bucket's part of the local bucket: each row also holds the
subject's last slot in the bucket before (``last_before``) and first slot in the bucket after
(``first_after``), so that is read from the strip's own rows. A strip holds few subjects, found
by index on the first or last slot. Buckets that this does not describe (cut by the range's
own ends, or with strips on both sides) are counted from the rollups directly.

Kept exactly: :func:`record` runs with ``db.rollups.add_results`` in the transaction that stores
results (and :func:`link` keeps the neighbours' slots); :func:`refresh` re-reads the first and
last slots from the subject's rollups after entries are taken out, and :func:`forget` drops an
erased subject; :func:`rebuild` recomputes a tenant's rows from the rollups.
"""
from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Uuid,
    and_,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from db.buckets import local_bounds, local_bucket, utc_bucket_end, utc_bucket_start
from db.models import TENANT_SERIES, emotion_rollups, subject_counts, subject_presence

UNITS = ("week", "month")
#: Rows per statement on SQLite (it binds at most 32,766 parameters).
ROWS_PER_STATEMENT = 2000


Key = tuple[uuid.UUID, str, str, datetime]


def keys_of(slots: Iterable[tuple[uuid.UUID, str, datetime]]) -> set[Key]:
    """The presence rows that slots of subjects (``TENANT_SERIES`` ignored) belong to."""
    return {(tenant_id, subject, unit, utc_bucket_start(slot, unit))
            for tenant_id, subject, slot in slots if subject != TENANT_SERIES for unit in UNITS}


def record(session: Session, slots: Iterable[tuple[uuid.UUID, str, datetime]]) -> None:
    """Note that these subjects have entries in these slots (the tenant series is skipped), counting
    each subject new to a UTC bucket once; in the caller's transaction."""
    spans: dict[Key, list[datetime]] = {}
    for tenant_id, subject, slot in slots:
        if subject == TENANT_SERIES:
            continue
        for unit in UNITS:
            span = spans.setdefault((tenant_id, subject, unit, utc_bucket_start(slot, unit)), [slot, slot])
            span[0], span[1] = min(span[0], slot), max(span[1], slot)
    if not spans:
        return
    rows = [{"tenant_id": tenant_id, "subject": subject, "unit": unit, "bucket_start": start,
             "first_slot": first, "last_slot": last}
            for (tenant_id, subject, unit, start), (first, last) in sorted(spans.items(), key=_key_order)]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(_RECORD_POSTGRESQL, {
            "subjects": sorted({f"{row['tenant_id']}/{row['subject']}" for row in rows}),
            "rows": json.dumps(rows, default=str, separators=(",", ":"))})
    else:
        _record_sqlite(session, rows)
    link(session, spans)


def neighbours(key: Key) -> tuple[datetime, datetime]:
    """The starts of the UTC buckets before and after a presence row's."""
    _, _, unit, start = key
    return _neighbour_starts(unit, start)


@functools.lru_cache(maxsize=4096)
def _neighbour_starts(unit: str, start: datetime) -> tuple[datetime, datetime]:
    return utc_bucket_start(start - timedelta(days=1), unit), utc_bucket_end(start, unit)


@functools.lru_cache(maxsize=4096)
def _link_moments(dialect: str, unit: str, start: datetime) -> tuple[str, str, str]:
    """A bucket's start and its neighbours', as :func:`link` sends them (every stored pass asks for
    the same few dozen buckets)."""
    moment = _json_moment(dialect)
    return (moment(start), *map(moment, _neighbour_starts(unit, start)))


def link(session: Session, keys: Iterable[Key]) -> None:
    """Set ``last_before`` and ``first_after`` of these presence rows and of their neighbours from the
    rows next to each (after their spans changed); rows that do not exist are skipped."""
    touched = set()
    for key in keys:
        before, after = neighbours(key)
        touched |= {key, (*key[:3], before), (*key[:3], after)}
    dialect = session.get_bind().dialect.name
    tenant = str if dialect == "postgresql" else lambda value: value.hex
    rows = []
    for tenant_id, subject, unit, start in sorted(touched, key=lambda key: (str(key[0]), *key[1:])):
        bucket, before, after = _link_moments(dialect, unit, start)
        rows.append({"tenant_id": tenant(tenant_id), "subject": subject, "unit": unit, "bucket_start": bucket,
                     "before_start": before, "after_start": after})
    session.execute(_link_statement(dialect), {"links": json.dumps(rows)})


def _key_order(item) -> tuple:
    """One order for every writer, so two transactions never wait on each other's rows in a cycle."""
    (tenant_id, subject, unit, start), _ = item
    return str(tenant_id), subject, unit, start


#: PostgreSQL: first a transaction lock per subject (in one order), so that two transactions writing
#: neighbouring buckets of one subject cannot each link against the other's old row (``link``);
#: then the rows stored and the subjects new to a bucket counted in one statement (``xmax = 0``
#: marks the rows the upsert inserted); a row whose span does not grow is not written again.
_LOCK_SUBJECTS_SQL = """
    SELECT pg_advisory_xact_lock(hashtextextended(subject, 0)) FROM unnest(CAST(:subjects AS TEXT[])) AS subject
"""
_LOCK_SUBJECTS = text(_LOCK_SUBJECTS_SQL)
_RECORD_POSTGRESQL = text(_LOCK_SUBJECTS_SQL + """;
    WITH stored AS (
        INSERT INTO subject_presence (tenant_id, subject, unit, bucket_start, first_slot, last_slot)
        SELECT tenant_id, subject, unit, bucket_start, first_slot, last_slot
        FROM jsonb_populate_recordset(NULL::subject_presence, CAST(:rows AS JSONB))
        ON CONFLICT (tenant_id, subject, unit, bucket_start) DO UPDATE SET
            first_slot = LEAST(subject_presence.first_slot, EXCLUDED.first_slot),
            last_slot = GREATEST(subject_presence.last_slot, EXCLUDED.last_slot)
        WHERE EXCLUDED.first_slot < subject_presence.first_slot OR EXCLUDED.last_slot > subject_presence.last_slot
        RETURNING tenant_id, unit, bucket_start, xmax = 0 AS inserted
    )
    INSERT INTO subject_counts (tenant_id, unit, bucket_start, subjects)
    SELECT tenant_id, unit, bucket_start, COUNT(*) FROM stored WHERE inserted
    GROUP BY tenant_id, unit, bucket_start ORDER BY tenant_id, unit, bucket_start
    ON CONFLICT (tenant_id, unit, bucket_start) DO UPDATE SET subjects = subject_counts.subjects + EXCLUDED.subjects
""")


_LINKS = {
    "postgresql": """SELECT * FROM jsonb_to_recordset(CAST(:links AS JSONB))
                     AS r(tenant_id UUID, subject TEXT, unit TEXT, bucket_start TIMESTAMPTZ,
                          before_start TIMESTAMPTZ, after_start TIMESTAMPTZ)""",
    "sqlite": """SELECT json_extract(value, '$.tenant_id') AS tenant_id, json_extract(value, '$.subject') AS subject,
                        json_extract(value, '$.unit') AS unit, json_extract(value, '$.bucket_start') AS bucket_start,
                        json_extract(value, '$.before_start') AS before_start,
                        json_extract(value, '$.after_start') AS after_start
                 FROM json_each(:links)""",
}


@functools.cache
def _link_statement(dialect: str):
    neighbour = """(SELECT n.{column} FROM subject_presence n WHERE n.tenant_id = r.tenant_id AND n.subject = r.subject
                    AND n.unit = r.unit AND n.bucket_start = r.{start})"""
    return text(f"""
        UPDATE subject_presence SET last_before = l.last_before, first_after = l.first_after
        FROM (SELECT r.tenant_id, r.subject, r.unit, r.bucket_start,
                     {neighbour.format(column="last_slot", start="before_start")} AS last_before,
                     {neighbour.format(column="first_slot", start="after_start")} AS first_after
              FROM ({_LINKS[dialect]}) AS r) AS l
        WHERE subject_presence.tenant_id = l.tenant_id AND subject_presence.subject = l.subject
          AND subject_presence.unit = l.unit AND subject_presence.bucket_start = l.bucket_start
          AND (subject_presence.last_before IS DISTINCT FROM l.last_before
               OR subject_presence.first_after IS DISTINCT FROM l.first_after)
    """)


def _record_sqlite(session: Session, rows: list[dict]) -> None:
    """SQLite: the caller's transaction already writes (the rollups), so no other writer runs between
    learning which rows are new and counting them."""
    table = subject_presence
    new: dict[tuple, int] = {}
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        inserted = session.execute(sqlite.insert(table).values(chunk).on_conflict_do_nothing()
                                   .returning(table.c.tenant_id, table.c.unit, table.c.bucket_start)).all()
        for row in inserted:
            new[tuple(row)] = new.get(tuple(row), 0) + 1
        statement = sqlite.insert(table).values(chunk)
        session.execute(statement.on_conflict_do_update(
            index_elements=["tenant_id", "subject", "unit", "bucket_start"],
            set_={"first_slot": func.min(table.c.first_slot, statement.excluded.first_slot),
                  "last_slot": func.max(table.c.last_slot, statement.excluded.last_slot)}))
    _add_counts(session, new)


def _add_counts(session: Session, changes: dict[tuple, int]) -> None:
    """Add to the subject counts of ``(tenant_id, unit, bucket_start)``; counts that reach zero go."""
    for (tenant_id, unit, start), change in sorted(changes.items(), key=lambda item: (str(item[0][0]), *item[0][1:])):
        key = and_(subject_counts.c.tenant_id == tenant_id, subject_counts.c.unit == unit,
                   subject_counts.c.bucket_start == start)
        if change > 0 and not session.execute(update(subject_counts).where(key).values(
                subjects=subject_counts.c.subjects + change)).rowcount:
            session.execute(subject_counts.insert().values(tenant_id=tenant_id, unit=unit, bucket_start=start,
                                                           subjects=change))
        elif change < 0:
            session.execute(update(subject_counts).where(key).values(subjects=subject_counts.c.subjects + change))
            session.execute(delete(subject_counts).where(key, subject_counts.c.subjects <= 0))


def refresh(session: Session, keys: set[Key]) -> None:
    """Re-read the first and last slots of these presence rows from the subjects' rollups (after
    entries were taken out); a row left without entries goes, and its bucket counts one subject less."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_SUBJECTS, {"subjects": sorted({f"{key[0]}/{key[1]}" for key in keys})})
    gone: dict[tuple, int] = {}
    for tenant_id, subject, unit, start in sorted(keys, key=lambda key: (str(key[0]), *key[1:])):
        slots = emotion_rollups.c.slot_start
        first, last = session.execute(select(func.min(slots), func.max(slots)).where(
            emotion_rollups.c.tenant_id == tenant_id, emotion_rollups.c.subject == subject,
            slots >= start, slots < utc_bucket_end(start, unit), emotion_rollups.c.entries > 0)).one()
        key = and_(subject_presence.c.tenant_id == tenant_id, subject_presence.c.subject == subject,
                   subject_presence.c.unit == unit, subject_presence.c.bucket_start == start)
        if first is None:
            if session.execute(delete(subject_presence).where(key)).rowcount:
                gone[(tenant_id, unit, start)] = gone.get((tenant_id, unit, start), 0) - 1
        else:
            session.execute(update(subject_presence).where(key).values(
                first_slot=_as_utc(first), last_slot=_as_utc(last)))
    _add_counts(session, gone)
    link(session, keys)


def _as_utc(value) -> datetime:
    """A MIN or MAX of a timestamp column: an aware datetime on PostgreSQL, text or naive on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def forget(session: Session, tenant_id: uuid.UUID, subject: str) -> int:
    """Drop an erased subject's presence rows and count it out of their buckets; returns the rows."""
    buckets = session.execute(delete(subject_presence).where(
        subject_presence.c.tenant_id == tenant_id, subject_presence.c.subject == subject,
    ).returning(subject_presence.c.unit, subject_presence.c.bucket_start)).all()
    _add_counts(session, {(tenant_id, unit, start): -1 for unit, start in buckets})
    return len(buckets)


def _bucket_sql(dialect: str, unit: str) -> str:
    """The UTC week or month of a rollup slot, in SQL (SQLite: in the text form of its timestamps)."""
    if dialect == "postgresql":
        return f"date_trunc('{unit}', slot_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    if unit == "week":
        return "date(slot_start, '-6 days', 'weekday 1') || ' 00:00:00.000000'"
    return "strftime('%Y-%m-01 00:00:00.000000', slot_start)"


def _shifted_sql(dialect: str, unit: str, step: int, start: str) -> str:
    """The start of the UTC bucket ``step`` before or after the bucket starting at ``start``, in SQL."""
    amount = f"{abs(step) * 7} days" if unit == "week" else f"{abs(step)} month"
    sign = "-" if step < 0 else "+"
    if dialect == "postgresql":
        return f"(({start} AT TIME ZONE 'UTC') {sign} interval '{amount}') AT TIME ZONE 'UTC'"
    return f"date({start}, '{sign}{amount}') || ' 00:00:00.000000'"


def rebuild(session: Session, tenant_id: uuid.UUID | None = None) -> int:
    """Recompute the presence rows and counts of one tenant (None: every tenant) from the subjects'
    rollups (rebuild those first); returns the presence rows written."""
    dialect = session.get_bind().dialect.name
    one_tenant = "AND tenant_id = :tenant_id" if tenant_id is not None else ""
    for table in (subject_presence, subject_counts):
        target = delete(table)
        session.execute(target.where(table.c.tenant_id == tenant_id) if tenant_id is not None else target)
    written = 0
    for unit in UNITS:
        statement = text(f"""
            INSERT INTO subject_presence (tenant_id, subject, unit, bucket_start, first_slot, last_slot,
                                          last_before, first_after)
            SELECT tenant_id, subject, '{unit}', bucket, first_slot, last_slot,
                   CASE WHEN LAG(bucket) OVER w = {_shifted_sql(dialect, unit, -1, "bucket")}
                        THEN LAG(last_slot) OVER w END,
                   CASE WHEN LEAD(bucket) OVER w = {_shifted_sql(dialect, unit, 1, "bucket")}
                        THEN LEAD(first_slot) OVER w END
            FROM (SELECT tenant_id, subject, {_bucket_sql(dialect, unit)} AS bucket, MIN(slot_start) AS first_slot,
                         MAX(slot_start) AS last_slot
                  FROM emotion_rollups WHERE subject <> '{TENANT_SERIES}' AND entries > 0 {one_tenant}
                  GROUP BY tenant_id, subject, bucket) AS spans
            WINDOW w AS (PARTITION BY tenant_id, subject ORDER BY bucket)
        """)
        written += session.execute(_with_tenant(statement, tenant_id)).rowcount
    session.execute(_with_tenant(text(f"""
        INSERT INTO subject_counts (tenant_id, unit, bucket_start, subjects)
        SELECT tenant_id, unit, bucket_start, COUNT(*) FROM subject_presence WHERE 1 = 1 {one_tenant}
        GROUP BY tenant_id, unit, bucket_start
    """), tenant_id))
    return written


def _with_tenant(statement, tenant_id: uuid.UUID | None):
    if tenant_id is None:
        return statement
    return statement.bindparams(bindparam("tenant_id", tenant_id, type_=Uuid))


@dataclass(frozen=True)
class LocalBucket:
    """A local week or month as UTC instants ``[lo, hi)`` (``whole`` unless the range cuts it), and
    the UTC bucket of the same date."""

    label: date
    lo: datetime
    hi: datetime
    unit: str
    whole: bool

    @property
    def main(self) -> datetime:
        return datetime.combine(self.label, time(), tzinfo=UTC)

    @property
    def main_end(self) -> datetime:
        return utc_bucket_end(self.main, self.unit)

    @property
    def before(self) -> bool:
        """It starts in the previous UTC bucket."""
        return self.lo < self.main

    @property
    def after(self) -> bool:
        """It ends in the next UTC bucket."""
        return self.hi > self.main_end

    @property
    def described(self) -> bool:
        """Whether the UTC bucket's first and last slots tell its subjects: the part of the UTC bucket
        inside it is a prefix or a suffix, and at most one neighbour adds a strip."""
        middle = self.lo > self.main and self.hi < self.main_end
        return not middle and not (self.before and self.after) and self.lo < self.main_end and self.hi > self.main


def local_buckets(start: datetime, end: datetime, unit: str, zone: ZoneInfo) -> list[LocalBucket]:
    """The local weeks or months of ``[start, end)`` in ``zone``, cut to the range."""
    buckets, label = [], local_bucket(start, zone, unit)
    while True:
        lo, hi = local_bounds(label, unit, zone)
        if lo >= end:
            return buckets
        buckets.append(LocalBucket(label, max(lo, start), min(hi, end), unit, whole=lo >= start and hi <= end))
        label = local_bucket(hi, zone, unit)


def counted(session: Session, tenant_id: uuid.UUID, buckets: list[LocalBucket]) -> dict[date, int]:
    """The distinct subjects of each local bucket (all :attr:`LocalBucket.described`, one unit), read
    from the presence rows and counts in one statement."""
    if not buckets:
        return {}
    dialect = session.get_bind().dialect.name
    moment = _json_moment(dialect)
    spans = []
    for idx, bucket in enumerate(buckets):
        span = {"idx": idx, "main": moment(bucket.main), "lo": moment(max(bucket.lo, bucket.main)),
                "hi": moment(min(bucket.hi, bucket.main_end)), "side": None, "neighbour": None, "edge": None}
        if bucket.before:
            span.update(side="before", neighbour=moment(_neighbour_starts(bucket.unit, bucket.main)[0]),
                        edge=moment(bucket.lo))
        elif bucket.after:
            span.update(side="after", neighbour=moment(bucket.main_end), edge=moment(bucket.hi))
        spans.append(span)
    counts = dict(session.execute(_counted_statement(dialect), {
        "spans": json.dumps(spans), "tenant_id": tenant_id, "unit": buckets[0].unit}).all())
    return {bucket.label: counts[idx] for idx, bucket in enumerate(buckets)}


def _json_moment(dialect: str):
    """Timestamps in the JSON of the spans as the database compares them: PostgreSQL reads ISO 8601
    with its offset, SQLite compares the text form its timestamp columns are stored in."""
    if dialect == "postgresql":
        return lambda moment: moment.isoformat()
    return lambda moment: moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_SPANS = {
    "postgresql": """SELECT * FROM jsonb_to_recordset(CAST(:spans AS JSONB))
                     AS s(idx INT, main TIMESTAMPTZ, lo TIMESTAMPTZ, hi TIMESTAMPTZ, side TEXT,
                          neighbour TIMESTAMPTZ, edge TIMESTAMPTZ)""",
    "sqlite": """SELECT json_extract(value, '$.idx') AS idx, json_extract(value, '$.main') AS main,
                        json_extract(value, '$.lo') AS lo, json_extract(value, '$.hi') AS hi,
                        json_extract(value, '$.side') AS side, json_extract(value, '$.neighbour') AS neighbour,
                        json_extract(value, '$.edge') AS edge
                 FROM json_each(:spans)""",
}


@functools.cache
def _counted_statement(dialect: str):
    """Per span (``main``: the UTC bucket, ``[lo, hi)``: its part inside the local bucket, ``side``,
    ``neighbour`` and ``edge``: the strip added from the previous or next UTC bucket), its subjects:
    the UTC bucket's count, minus its subjects with no entry in ``[lo, hi)``, plus the neighbour's
    subjects reaching past the edge with no entry in the UTC bucket's part (``first_after`` or
    ``last_before``, on the strip's own rows). Each term is a subquery run per span, so each is an
    index range scan of one strip whatever the planner guesses of the spans. One statement text
    whatever the spans, so it is compiled once."""
    present = "p.tenant_id = :tenant_id AND p.unit = :unit"
    return text(f"""
        WITH s AS ({_SPANS[dialect]})
        SELECT s.idx,
            COALESCE((SELECT n.subjects FROM subject_counts n
                      WHERE n.tenant_id = :tenant_id AND n.unit = :unit AND n.bucket_start = s.main), 0)
            - (SELECT COUNT(*) FROM subject_presence p
               WHERE {present} AND p.bucket_start = s.main AND p.first_slot >= s.hi)
            - (SELECT COUNT(*) FROM subject_presence p
               WHERE {present} AND p.bucket_start = s.main AND p.last_slot < s.lo)
            + (SELECT COUNT(*) FROM subject_presence p
               WHERE s.side = 'before' AND {present} AND p.bucket_start = s.neighbour AND p.last_slot >= s.edge
                 AND (p.first_after IS NULL OR p.first_after >= s.hi))
            + (SELECT COUNT(*) FROM subject_presence p
               WHERE s.side = 'after' AND {present} AND p.bucket_start = s.neighbour AND p.first_slot < s.edge
                 AND (p.last_before IS NULL OR p.last_before < s.lo))
        FROM s
    """).bindparams(bindparam("tenant_id", type_=Uuid))
