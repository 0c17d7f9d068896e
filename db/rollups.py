"""Emotion results added up per tenant, subject and 15-minute UTC slot, kept as results are stored.

Every entry with an emotion result (emotion jobs, a transcription's document-level emotion, an
analyze job's emotion) adds to two rows of ``emotion_rollups``: its subject's slot (when it has
a subject) and the tenant-wide series' slot (``TENANT_SERIES``, every entry). A row holds the
number of entries and, per label of ``config.valence.LABELS``, the sum of the probabilities, the
sum of their squares (variances and effect sizes) and how many entries passed the label's
threshold. A slot is the quarter hour of the entry's ``occurred_at`` in UTC: every UTC offset in
use is a whole number of quarter hours (Asia/Kolkata +5:30, Asia/Kathmandu +5:45), so any time
zone's days, weeks and months, daylight-saving days included, are sums of whole slots
(:func:`bucketed`).

Exactly once: :func:`add_results` runs in the transaction that stores the results, for the jobs
whose conditional UPDATE stored them (``db.jobs.complete_jobs``), so a redelivered or canceled
job adds nothing. :func:`subtract_job` takes a stored job's share out again (before deleting it).
:func:`rebuild` recomputes a tenant's rows from the raw ``emotion_scores``.

Readers for analytics over ``[start, end)``, of a subject or of the whole tenant: :func:`totals`
(one :class:`Aggregate`), :func:`bucketed` (a :class:`BucketSums` per local day, week or month) and
:func:`distinct_subjects` (per local bucket). Bounds count at slot resolution: a slot belongs to
the range when it starts in it.
"""
from __future__ import annotations

import functools
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Uuid, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from config.valence import LABELS
from db import subject_presence
from db.buckets import local_bucket, slot_of
from db.models import TENANT_SERIES, EmotionScore, Job, JobStatus, emotion_rollups, rollup_columns
from db.types import UtcDateTime

UNITS = ("day", "week", "month")
#: Rows per upsert statement (SQLite binds at most 32,766 parameters; a row has 88).
ROWS_PER_UPSERT = 300
LABEL_COLUMNS = tuple(name for label in LABELS for name in rollup_columns(label))
VALUE_COLUMNS = ("entries", *LABEL_COLUMNS)


@dataclass
class Aggregate:
    """Entries of a subject (or tenant) over some range: count, and per label the sum of probabilities,
    the sum of squared probabilities and the threshold passes."""

    entries: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LABELS, 0.0))
    squares: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LABELS, 0.0))
    passes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))

    @classmethod
    def of_row(cls, row) -> Aggregate:
        """A row of ``VALUE_COLUMNS`` sums (None when nothing matched): entries, then p, q, t per label."""
        values = [value or 0 for value in row]
        return cls(entries=int(values[0]), sums=dict(zip(LABELS, map(float, values[1::3]))),
                   squares=dict(zip(LABELS, map(float, values[2::3]))),
                   passes=dict(zip(LABELS, map(int, values[3::3]))))

    def add(self, other: Aggregate, sign: int = 1) -> None:
        self.entries += sign * other.entries
        for label in LABELS:
            self.sums[label] += sign * other.sums[label]
            self.squares[label] += sign * other.squares[label]
            self.passes[label] += sign * other.passes[label]

    def mean(self, label: str) -> float | None:
        return self.sums[label] / self.entries if self.entries else None

    def variance(self, label: str) -> float | None:
        """Of the label's probabilities (population variance), never below zero from rounding."""
        if not self.entries:
            return None
        mean = self.sums[label] / self.entries
        return max(self.squares[label] / self.entries - mean * mean, 0.0)

    def share_over_threshold(self, label: str) -> float | None:
        return self.passes[label] / self.entries if self.entries else None


@dataclass(frozen=True)
class ScoredEntry:
    """One stored emotion result and where it belongs."""

    tenant_id: uuid.UUID
    subject: str | None
    occurred_at: datetime
    emotion: dict


def result_values(emotion: dict) -> list:
    """One entry's emotion result (``probabilities``, ``emotions`` over their thresholds) as the values
    of a rollup row, in ``VALUE_COLUMNS`` order: the write path adds these flat lists, not
    :class:`Aggregate` objects, as it runs for every stored result."""
    over = set(emotion.get("emotions") or ())
    probabilities = emotion.get("probabilities") or {}
    values = [1]
    for label in LABELS:
        if label in probabilities:
            probability = float(probabilities[label])
            values += (probability, probability * probability, int(label in over))
        else:
            values += (0.0, 0.0, 0)
    return values


RollupKey = tuple[uuid.UUID, str, datetime]


def add_results(session: Session, entries: Iterable[ScoredEntry], sign: int = 1) -> None:
    """Add (``sign`` -1: take out) the entries' results to their subject's and their tenant's slots,
    in the caller's transaction."""
    changes: dict[RollupKey, list] = {}
    for entry in entries:
        values = result_values(entry.emotion)
        slot = slot_of(entry.occurred_at)
        for subject in ((TENANT_SERIES, entry.subject) if entry.subject else (TENANT_SERIES,)):
            key = (entry.tenant_id, subject, slot)
            known = changes.get(key)
            changes[key] = values if known is None else [a + b for a, b in zip(known, values)]
    if not changes:
        return
    upsert(session, [(key, values if sign == 1 else [sign * value for value in values])
                     for key, values in sorted(changes.items(), key=_row_order)])
    if sign > 0:
        subject_presence.record(session, changes)
        return
    for tenant_id, subject, slot in changes:
        session.execute(delete(emotion_rollups).where(
            emotion_rollups.c.tenant_id == tenant_id, emotion_rollups.c.subject == subject,
            emotion_rollups.c.slot_start == slot, emotion_rollups.c.entries <= 0))
    subject_presence.refresh(session, subject_presence.keys_of(changes))


def _row_order(item) -> tuple:
    """One order for every writer, so two transactions adding to the same rows never deadlock."""
    (tenant_id, subject, slot), _ = item
    return str(tenant_id), subject, slot


def _cast(column: str) -> str:
    """The column's SQL type as ``emotion_rollups`` declares it (INTEGER or FLOAT, PostgreSQL's double)."""
    return emotion_rollups.c[column].type.compile(dialect=postgresql.dialect())


#: PostgreSQL: every row in one JSON parameter, so the statement text is the same for any number of
#: rows and is never compiled again (building and compiling an 88-column multi-row INSERT per
#: stored batch cost the worker more than the statement itself). A row is an array (key, then
#: ``VALUE_COLUMNS``): encoding 85 keys per row cost the worker more than the values. Rows
#: arrive merged per key.
_UPSERT_POSTGRESQL = text(f"""
    INSERT INTO emotion_rollups (tenant_id, subject, slot_start, {", ".join(VALUE_COLUMNS)})
    SELECT CAST(r ->> 0 AS UUID), r ->> 1, CAST(r ->> 2 AS TIMESTAMPTZ),
           {", ".join(f"CAST(r ->> {n} AS {_cast(name)})" for n, name in enumerate(VALUE_COLUMNS, start=3))}
    FROM jsonb_array_elements(CAST(:rows AS JSONB)) AS r
    ON CONFLICT (tenant_id, subject, slot_start) DO UPDATE SET
        {", ".join(f"{name} = emotion_rollups.{name} + EXCLUDED.{name}" for name in VALUE_COLUMNS)}
""")


def upsert(session: Session, rows: list[tuple[RollupKey, list]]) -> None:
    """Add each row's values (``VALUE_COLUMNS`` order) to the stored row of its key, or store it (both dialects)."""
    if session.get_bind().dialect.name == "postgresql":
        encoded = [[str(tenant_id), subject, slot.isoformat(), *values] for (tenant_id, subject, slot), values in rows]
        session.execute(_UPSERT_POSTGRESQL, {"rows": json.dumps(encoded, separators=(",", ":"))})
        return
    records = [{"tenant_id": tenant_id, "subject": subject, "slot_start": slot, **dict(zip(VALUE_COLUMNS, values))}
               for (tenant_id, subject, slot), values in rows]
    for start in range(0, len(records), ROWS_PER_UPSERT):
        statement = sqlite.insert(emotion_rollups).values(records[start:start + ROWS_PER_UPSERT])
        session.execute(statement.on_conflict_do_update(
            index_elements=["tenant_id", "subject", "slot_start"],
            set_={name: emotion_rollups.c[name] + statement.excluded[name] for name in VALUE_COLUMNS},
        ))


def stored_result(session: Session, job_id: uuid.UUID) -> ScoredEntry | None:
    """A succeeded job's emotion result as its score rows hold it, or None (no result, no scores)."""
    job = session.execute(select(Job.tenant_id, Job.subject, Job.occurred_at, Job.created_at)
                          .where(Job.id == job_id, Job.status == JobStatus.SUCCEEDED)).first()
    if job is None:
        return None
    scores = session.execute(select(EmotionScore.label, EmotionScore.probability, EmotionScore.above_threshold)
                             .where(EmotionScore.job_id == job_id)).all()
    if not scores:
        return None
    emotion = {"probabilities": {label: p for label, p, _ in scores},
               "emotions": [label for label, _, over in scores if over]}
    return ScoredEntry(job.tenant_id, job.subject, job.occurred_at or job.created_at, emotion)


def subtract_job(session: Session, job_id: uuid.UUID) -> bool:
    """Take a stored job's share out of the rollups (call it in the transaction that deletes the job);
    False when the job added nothing."""
    entry = stored_result(session, job_id)
    if entry is None:
        return False
    add_results(session, [entry], sign=-1)
    return True


def _slot_sql(dialect: str) -> str:
    """The UTC quarter hour of an entry, in SQL; on SQLite in the text form its timestamps are stored in."""
    moment = "COALESCE(j.occurred_at, j.created_at)"
    if dialect == "postgresql":
        return f"to_timestamp(floor(extract(epoch FROM {moment}) / 900) * 900)"
    return (f"strftime('%Y-%m-%d %H:', {moment}) || printf('%02d', CAST(strftime('%M', {moment}) AS INTEGER) "
            "/ 15 * 15) || '\\:00.000000'")  # the backslash: `:00` is no bind parameter


def _label_sums_sql() -> list[str]:
    """Per label column, its sum over score rows ``s``, named as the column."""
    sums = []
    for label in LABELS:
        p, q, t = rollup_columns(label)
        sums += [f"SUM(CASE WHEN s.label = '{label}' THEN s.probability ELSE 0 END) AS {p}",
                 f"SUM(CASE WHEN s.label = '{label}' THEN s.probability * s.probability ELSE 0 END) AS {q}",
                 f"SUM(CASE WHEN s.label = '{label}' AND s.above_threshold THEN 1 ELSE 0 END) AS {t}"]
    return sums


def _rebuild_sql(dialect: str, per_subject: bool, one_tenant: bool) -> str:
    sums = _label_sums_sql()
    subject = "j.subject" if per_subject else f"'{TENANT_SERIES}'"
    return f"""
        INSERT INTO emotion_rollups (tenant_id, subject, slot_start, {", ".join(VALUE_COLUMNS)})
        SELECT j.tenant_id, {subject}, {_slot_sql(dialect)} AS slot, COUNT(DISTINCT s.job_id), {", ".join(sums)}
        FROM emotion_scores s JOIN jobs j ON j.id = s.job_id
        WHERE j.status = 'succeeded' {"AND j.subject IS NOT NULL" if per_subject else ""}
              {"AND j.tenant_id = :tenant_id" if one_tenant else ""}
        GROUP BY j.tenant_id{", j.subject" if per_subject else ""}, slot
    """


@functools.cache
def _subtract_sql(dialect: str) -> str:
    assignments = ", ".join(f"{name} = emotion_rollups.{name} - gone.{name}" for name in VALUE_COLUMNS)
    return f"""
        UPDATE emotion_rollups SET {assignments}
        FROM (SELECT {_slot_sql(dialect)} AS slot, COUNT(DISTINCT s.job_id) AS entries, {", ".join(_label_sums_sql())}
              FROM emotion_scores s JOIN jobs j ON j.id = s.job_id
              WHERE j.status = 'succeeded' AND j.id IN :job_ids AND s.job_id IN :job_ids
              GROUP BY slot) AS gone
        WHERE emotion_rollups.tenant_id = :tenant_id AND emotion_rollups.subject = '{TENANT_SERIES}'
              AND emotion_rollups.slot_start = gone.slot
        RETURNING slot_start
    """


def subtract_from_tenant_series(session: Session, tenant_id: uuid.UUID, job_ids: list[uuid.UUID]) -> None:
    """Take stored jobs' shares out of their tenant's series, computed in the database from their score
    rows (many jobs at once: an erasure, whose subject's own series it deletes whole); emptied slots go.

    The ids filter the scores (by their primary key's first column) as well as the jobs, so the
    planner reads only these jobs' rows by index instead of the whole scores or jobs table; only
    the slots the update touched are looked at for emptied ones, by primary key.
    """
    dialect = session.get_bind().dialect.name
    statement = text(_subtract_sql(dialect)).bindparams(
        bindparam("job_ids", expanding=True, type_=Uuid), bindparam("tenant_id", type_=Uuid)
    ).columns(slot_start=UtcDateTime)
    slots = list(session.scalars(statement, {"job_ids": list(job_ids), "tenant_id": tenant_id}))
    for start in range(0, len(slots), ROWS_PER_UPSERT):
        session.execute(delete(emotion_rollups).where(
            emotion_rollups.c.tenant_id == tenant_id, emotion_rollups.c.subject == TENANT_SERIES,
            emotion_rollups.c.slot_start.in_(slots[start:start + ROWS_PER_UPSERT]), emotion_rollups.c.entries <= 0))


def rebuild(session: Session, tenant_id: uuid.UUID | None = None) -> int:
    """Recompute the rollups of one tenant (None: every tenant) from ``emotion_scores``; returns the rows written.

    Run it with writers stopped for that tenant (or accept that results stored meanwhile may be
    counted twice or not at all until the next rebuild).
    """
    dialect = session.get_bind().dialect.name
    target = delete(emotion_rollups)
    if tenant_id is not None:
        target = target.where(emotion_rollups.c.tenant_id == tenant_id)
    session.execute(target)
    written = 0
    for per_subject in (True, False):
        statement = text(_rebuild_sql(dialect, per_subject, tenant_id is not None))
        if tenant_id is not None:
            statement = statement.bindparams(bindparam("tenant_id", tenant_id, type_=Uuid))
        written += session.execute(statement).rowcount
    subject_presence.rebuild(session, tenant_id)
    return written


def _series(tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime) -> list:
    return [emotion_rollups.c.tenant_id == tenant_id,
            emotion_rollups.c.subject == (subject if subject is not None else TENANT_SERIES),
            emotion_rollups.c.slot_start >= start, emotion_rollups.c.slot_start < end]


@functools.cache
def _sums() -> tuple:
    """The SUM of every value column, built once (88 expressions are not free to build per read)."""
    return tuple(func.sum(emotion_rollups.c[name]) for name in VALUE_COLUMNS)


def totals(session: Session, tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime) -> Aggregate:
    """A subject's entries (None: the tenant's) over ``[start, end)``, added up."""
    return Aggregate.of_row(session.execute(select(*_sums()).where(*_series(tenant_id, subject, start, end))).one())


#: What a timeline shows of a bucket: its entries, then per label the sum of probabilities and the
#: threshold passes (the sums of squares serve the insights only, which read :func:`totals`).
BUCKET_COLUMNS = ("entries", *(name for label in LABELS for name in rollup_columns(label)[::2]))


@dataclass(frozen=True)
class BucketSums:
    """One local bucket's entries, and per label (``LABELS`` order) the sum of probabilities and the
    number of entries over the threshold."""

    entries: int
    sums: list[float]
    passes: list[int]

    @classmethod
    def of_values(cls, values) -> BucketSums:
        """From sums in ``BUCKET_COLUMNS`` order."""
        return cls(int(values[0]), [float(value) for value in values[1::2]], [int(value) for value in values[2::2]])


#: PostgreSQL's own reading of the local buckets (``date_trunc`` weeks start on Monday too), as one
#: JSON array of ``[bucket, entries, p, t, p, t, ...]``: a year of days is some hundred rows of 57
#: sums, and PostgreSQL writes and orjson reads them as one JSON text faster than as that many
#: columns of a result. Plain SQL, built once: a read is a few milliseconds, and building and
#: caching the statement each time would be a good part of them.
_BUCKETED_POSTGRESQL = text(f"""
    SELECT json_agg(json_build_array(bucket::date, {", ".join(BUCKET_COLUMNS)}) ORDER BY bucket)::text
    FROM (SELECT date_trunc(:unit, timezone(:tz, slot_start)) AS bucket,
                 {", ".join(f"SUM({c}) AS {c}" for c in BUCKET_COLUMNS)}
          FROM emotion_rollups
          WHERE tenant_id = :tenant_id AND subject = :subject AND slot_start >= :start AND slot_start < :end
          GROUP BY 1) AS buckets
""").bindparams(bindparam("tenant_id", type_=Uuid), bindparam("start", type_=UtcDateTime),
                bindparam("end", type_=UtcDateTime))
_DISTINCT_SUBJECTS_POSTGRESQL = text(f"""
    SELECT date_trunc(:unit, timezone(:tz, slot_start)) AS bucket, COUNT(DISTINCT subject)
    FROM emotion_rollups
    WHERE tenant_id = :tenant_id AND subject <> '{TENANT_SERIES}' AND slot_start >= :start AND slot_start < :end
    GROUP BY 1
""").bindparams(bindparam("tenant_id", type_=Uuid), bindparam("start", type_=UtcDateTime),
                bindparam("end", type_=UtcDateTime))
#: Per-bucket sums of a year of slots group in memory: the default work_mem would sort them on disk.
_READ_WORK_MEM = "SET LOCAL work_mem = '32MB'"
#: The distinct-subject count is a few index range scans whose estimated cost can reach the JIT
#: threshold: compiling it would take far longer than running it.
_NO_JIT = "SET LOCAL jit = off"


def bucketed(session: Session, tenant_id: uuid.UUID, subject: str | None, start: datetime, end: datetime,
             unit: str, zone: ZoneInfo) -> list[tuple[date, BucketSums]]:
    """The entries of ``[start, end)`` added up per local day, week or month of ``zone``, oldest first;
    buckets without entries are left out.

    PostgreSQL groups the slots itself (``timezone``, ``date_trunc``); SQLite, which knows no time
    zones, hands the slots over and they are grouped here with ``zoneinfo``: the same buckets either way.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_READ_WORK_MEM))
        document = session.execute(_BUCKETED_POSTGRESQL, {
            "unit": unit, "tz": zone.key, "tenant_id": tenant_id, "start": start, "end": end,
            "subject": subject if subject is not None else TENANT_SERIES}).scalar()
        return [(date.fromisoformat(row[0]), BucketSums.of_values(row[1:])) for row in orjson.loads(document or "[]")]
    grouped: dict[date, list] = {}
    columns = [emotion_rollups.c[name] for name in BUCKET_COLUMNS]
    for slot, *values in session.execute(select(emotion_rollups.c.slot_start, *columns)
                                         .where(*_series(tenant_id, subject, start, end))).all():
        bucket = local_bucket(slot, zone, unit)
        total = grouped.get(bucket)
        grouped[bucket] = values if total is None else [a + b for a, b in zip(total, values)]
    return [(bucket, BucketSums.of_values(values)) for bucket, values in sorted(grouped.items())]


def distinct_subjects(session: Session, tenant_id: uuid.UUID, start: datetime, end: datetime, unit: str,
                      zone: ZoneInfo) -> dict[date, int]:
    """How many subjects had entries in each local bucket of ``[start, end)``.

    Weeks and months whole inside the range are counted from ``subject_presence``; days, and the
    buckets the range cuts, from the subjects' slots.
    """
    if unit not in subject_presence.UNITS:
        return _distinct_subjects_scanned(session, tenant_id, start, end, unit, zone)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_NO_JIT))
    described, scanned = [], {}
    for bucket in subject_presence.local_buckets(start, end, unit, zone):
        if bucket.described and bucket.whole:
            described.append(bucket)
        else:
            scanned.update(_distinct_subjects_scanned(session, tenant_id, bucket.lo, bucket.hi, unit, zone))
    counts = {**scanned, **subject_presence.counted(session, tenant_id, described)}
    return {bucket: count for bucket, count in counts.items() if count}


def _distinct_subjects_scanned(session: Session, tenant_id: uuid.UUID, start: datetime, end: datetime, unit: str,
                               zone: ZoneInfo) -> dict[date, int]:
    """Distinct subjects per local bucket, from every subject slot of the range."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_DISTINCT_SUBJECTS_POSTGRESQL, {
            "unit": unit, "tz": zone.key, "tenant_id": tenant_id, "start": start, "end": end}).all()
        return {row[0].date(): row[1] for row in rows}
    where = [emotion_rollups.c.tenant_id == tenant_id, emotion_rollups.c.subject != TENANT_SERIES,
             emotion_rollups.c.slot_start >= start, emotion_rollups.c.slot_start < end]
    seen: dict[date, set[str]] = defaultdict(set)
    for slot, subject in session.execute(select(emotion_rollups.c.slot_start, emotion_rollups.c.subject)
                                         .where(*where)).all():
        seen[local_bucket(slot, zone, unit)].add(subject)
    return {bucket: len(subjects) for bucket, subjects in seen.items()}
