"""Batches and their items: jobs with a ``batch_id`` and the row number they had in the upload.

Items travel to the workers in chunks: a chunk is a list of row numbers of one batch, sent as
one `bulk` message and claimed with one conditional UPDATE (:func:`db.jobs.claim_jobs`), so a
redelivered chunk claims only what is still unfinished. A batch is completed by the first
worker that finds none of its items unfinished, canceled by one UPDATE of the batch and its
unfinished items; both are conditional, so a cancel racing the last chunk ends one way only.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from db.jobs import ClaimedJob, claim_jobs, stale_condition
from db.models import (
    TERMINAL_STATUSES,
    UNFINISHED_STATUSES,
    Batch,
    BatchStatus,
    Job,
    JobStatus,
    utcnow,
)
from db.score_only import keeps_input

ROWS_PER_INSERT = 2000


@dataclass(frozen=True)
class NewItem:
    """A valid upload row: its 1-based row number, the text, the client's id for it and its entry fields."""

    row: int
    text: str
    client_id: str | None = None
    subject: str | None = None
    occurred_at: datetime | None = None
    metadata: dict | None = None


def insert_items(session: Session, batch: Batch, items: list[NewItem], purge_after: datetime | None = None,
                 queue: str = "bulk") -> None:
    """Store the items as queued jobs of ``batch``, with its ``options`` (``store_input``,
    ``retention_days``) and the retention sweep's ``purge_after``.

    ``enqueued_at`` is set now, before the chunks are published: the caller clears it for the
    rows of any chunk it could not publish, so the sweep sends those (``mark_unpublished``).
    On PostgreSQL the items travel as one JSON document per few thousand rows and the database
    builds the rows (ids included), which halves the time of a 10,000-row upload against
    executemany; elsewhere the rows are built here.
    """
    now = utcnow()
    postgresql = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(items), ROWS_PER_INSERT):
        part = items[start:start + ROWS_PER_INSERT]
        if postgresql:
            session.execute(INSERT_ITEMS, {
                "tenant_id": batch.tenant_id, "batch_id": batch.id, "type": batch.type, "queue": queue, "now": now,
                "options": json.dumps(batch.options or {}), "purge_after": purge_after,
                "items": json.dumps([{"row": item.row, "text": item.text, "client_id": item.client_id,
                                      "subject": item.subject, "metadata": item.metadata,
                                      "occurred_at": item.occurred_at.isoformat() if item.occurred_at else None}
                                     for item in part],
                                    separators=(",", ":")),
            })
            continue
        session.execute(insert(Job), [
            {"id": uuid.uuid4(), "tenant_id": batch.tenant_id, "batch_id": batch.id, "batch_item": item.row,
             "client_id": item.client_id, "type": batch.type, "status": JobStatus.QUEUED, "queue": queue,
             "input": {"text": item.text}, "options": batch.options or {}, "created_at": now, "enqueued_at": now,
             "attempts": 0, "subject": item.subject, "occurred_at": item.occurred_at or now,
             "entry_metadata": item.metadata, "purge_after": purge_after}
            for item in part
        ])


INSERT_ITEMS = text("""
    INSERT INTO jobs (id, tenant_id, batch_id, batch_item, client_id, type, status, queue, input, options,
                      created_at, enqueued_at, attempts, subject, occurred_at, entry_metadata, purge_after)
    SELECT gen_random_uuid(), :tenant_id, :batch_id, item.row, item.client_id, :type, 'queued', :queue,
           jsonb_build_object('text', item.text), CAST(:options AS JSONB), :now, :now, 0,
           item.subject, COALESCE(item.occurred_at, :now), item.metadata, :purge_after
    FROM jsonb_to_recordset(CAST(:items AS JSONB))
         AS item("row" INTEGER, text TEXT, client_id TEXT, subject TEXT, occurred_at TIMESTAMPTZ, metadata JSONB)
""")


def plan_chunks(items: list[NewItem], chunk_size: int) -> list[list[int]]:
    """Row numbers grouped into chunks of texts of similar length, longest first.

    A worker pads every text of a forward pass to the longest one, so chunks cut from the
    length-sorted upload waste almost nothing on padding, as chunks cut in row order would.
    Longest first, because the chunks are published in this order and taken by several worker
    processes: the last ones, which one process may run while the others have nothing left,
    are then the shortest.
    """
    ordered = sorted(items, key=lambda item: len(item.text), reverse=True)
    return [[item.row for item in ordered[start:start + chunk_size]]
            for start in range(0, len(ordered), chunk_size)]


def claim_chunk(session: Session, batch_id: uuid.UUID, rows: list[int]) -> list[ClaimedJob]:
    jobs = claim_jobs(session, Job.batch_id == batch_id, Job.batch_item.in_(rows))
    if jobs:
        session.execute(update(Batch).where(Batch.id == batch_id, Batch.started_at.is_(None))
                        .values(started_at=utcnow()))
    return jobs


def mark_unpublished(session: Session, batch_id: uuid.UUID, rows: list[int]) -> None:
    """The chunk's message was not sent: the sweep finds its items by the missing ``enqueued_at``."""
    session.execute(update(Job).where(Job.batch_id == batch_id, Job.batch_item.in_(rows))
                    .values(enqueued_at=None).execution_options(synchronize_session=False))


def mark_enqueued(session: Session, batch_id: uuid.UUID, rows: list[int]) -> None:
    session.execute(update(Job).where(Job.batch_id == batch_id, Job.batch_item.in_(rows),
                                      Job.status == JobStatus.QUEUED)
                    .values(enqueued_at=utcnow()).execution_options(synchronize_session=False))


def status_counts(session: Session, batch_id: uuid.UUID) -> dict[str, int]:
    """Items by status, every status present (zeros included)."""
    counts = {status.value: 0 for status in JobStatus}
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
    ).all()
    for status, number in rows:
        counts[JobStatus(status).value] = number
    return counts


def complete_if_done(session: Session, batch_id: uuid.UUID) -> bool:
    """Mark a running batch completed when no item is unfinished; True for the one caller that did.

    Call it after committing the items' results: the last of several concurrent chunks to
    commit is then sure to see every item finished.
    """
    unfinished = select(Job.id).where(Job.batch_id == batch_id, Job.status.in_(UNFINISHED_STATUSES)).exists()
    result = session.execute(
        update(Batch).where(Batch.id == batch_id, Batch.status == BatchStatus.RUNNING, ~unfinished)
        .values(status=BatchStatus.COMPLETED, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def cancel_batch(session: Session, batch_id: uuid.UUID) -> bool:
    """Cancel a running batch and its unfinished items; False if it had already ended."""
    now = utcnow()
    result = session.execute(
        update(Batch).where(Batch.id == batch_id, Batch.status == BatchStatus.RUNNING)
        .values(status=BatchStatus.CANCELED, finished_at=now).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    options = session.scalar(select(Batch.options).where(Batch.id == batch_id))
    dropped = {} if keeps_input(options) else {"input": None}
    session.execute(
        update(Job).where(Job.batch_id == batch_id, Job.status.in_(UNFINISHED_STATUSES))
        .values(status=JobStatus.CANCELED, finished_at=now, **dropped).execution_options(synchronize_session=False)
    )
    return True


def batches_in_flight(session: Session, tenant_id: uuid.UUID) -> int:
    return session.scalar(
        select(func.count()).select_from(Batch)
        .where(Batch.tenant_id == tenant_id, Batch.status == BatchStatus.RUNNING)
    ) or 0


def finished_items(session: Session, batch_id: uuid.UUID, after_row: int, limit: int):
    """Terminal items after ``after_row``, in row order: one page of a results stream."""
    return session.execute(
        select(Job.batch_item, Job.client_id, Job.id, Job.status, Job.result, Job.error_code, Job.error_message,
               Job.subject, Job.occurred_at, Job.entry_metadata)
        .where(Job.batch_id == batch_id, Job.batch_item > after_row, Job.status.in_(TERMINAL_STATUSES))
        .order_by(Job.batch_item)
        .limit(limit)
    ).all()


def items_page(session: Session, batch_id: uuid.UUID, after_row: int, limit: int) -> list[Job]:
    return list(session.scalars(
        select(Job).where(Job.batch_id == batch_id, Job.batch_item > after_row)
        .order_by(Job.batch_item).limit(limit)
    ))


def stale_chunks(session: Session, requeue_after_s: float | None, running_stale_after_s: float,
                 unpublished_after_s: float = 30, limit: int = 20_000) -> list[tuple[uuid.UUID, list[int]]]:
    """Chunks to publish again: the stale items of running batches, in row order, cut to each batch's chunk size."""
    rows = session.execute(
        select(Job.batch_id, Job.batch_item, Batch.chunk_size)
        .join(Batch, Batch.id == Job.batch_id)
        .where(Batch.status == BatchStatus.RUNNING,
               stale_condition(requeue_after_s, running_stale_after_s, unpublished_after_s))
        .order_by(Job.batch_id, Job.batch_item)
        .limit(limit)
    ).all()
    chunks = []
    for batch_id, items in groupby(rows, key=lambda row: row.batch_id):
        items = list(items)
        size = max(1, items[0].chunk_size)
        numbers = [item.batch_item for item in items]
        chunks.extend((batch_id, numbers[start:start + size]) for start in range(0, len(numbers), size))
    return chunks


def batch_by_idempotency_key(session: Session, tenant_id: uuid.UUID, key: str) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.tenant_id == tenant_id, Batch.idempotency_key == key))


def tenant_batches_query(tenant_id: uuid.UUID, statuses=()):
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if statuses:
        query = query.where(Batch.status.in_(statuses))
    return query


def status_counts_of(session: Session, batch_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """:func:`status_counts` of several batches in one query."""
    counts = {batch_id: {status.value: 0 for status in JobStatus} for batch_id in batch_ids}
    if batch_ids:
        rows = session.execute(select(Job.batch_id, Job.status, func.count())
                               .where(Job.batch_id.in_(batch_ids)).group_by(Job.batch_id, Job.status)).all()
        for batch_id, status, number in rows:
            counts[batch_id][JobStatus(status).value] = number
    return counts
