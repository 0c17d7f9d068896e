"""Group commit for job submissions: concurrent submissions in one API process share their writes.

A request thread hands its ready job row to the process's writer and waits. The writer thread
takes every row waiting at that moment, inserts them with one statement in one transaction,
then publishes their broker messages in one Redis round trip (kombu's producer batch), and
wakes the waiting threads. N submissions arriving together cost one INSERT, one COMMIT and one
publish instead of N of each; a lone submission waits for nothing, since the writer starts as
soon as a row arrives (there is no timer to fill a group).

The guarantees of the one-row path stay: a request is answered 202 only after its row is
committed; a row whose message could not be published is marked unpublished (the requeue sweep
sends it); a row that violates a constraint (a reused ``Idempotency-Key`` raced by another
request) fails alone: the group is written again row by row and only that request sees the
``IntegrityError``. Submissions that write more than their job row (a webhook subscription, an
uploaded file) keep the request's own transaction (``api.jobs``).
"""
from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from api.background import BackgroundThread
from db.models import Job

log = logging.getLogger(__name__)

#: Rows per INSERT; a larger wave is written in several groups.
MAX_GROUP = 256
JOB_COLUMNS = tuple(column.key for column in Job.__table__.columns)


def job_row(job: Job) -> dict:
    """Every column of a new (transient) job, defaults included, as the INSERT writes it."""
    return {key: getattr(job, key) for key in JOB_COLUMNS}


@dataclass
class PendingJob:
    row: dict
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    published: bool = False


class JobWriter:
    """One per API process; ``write`` is called from request threads."""

    def __init__(self, engine: Engine, publish: Callable[[list[tuple[uuid.UUID, str]]], bool]) -> None:
        self.engine = engine
        self.publish = publish
        self._pending: queue.SimpleQueue[PendingJob] = queue.SimpleQueue()
        self._thread = BackgroundThread(self._run, "samo-job-writer")
        self._connection: Connection | None = None

    def write(self, job: Job) -> bool:
        """Commit the job's row and publish its message; returns whether the message went out.

        Raises what the INSERT raised for this row (``IntegrityError`` for a duplicate key, or
        the database error that failed its group).
        """
        pending = PendingJob(job_row(job))
        self._thread.ensure_running()
        self._pending.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.published

    def _run(self) -> None:
        while True:
            group = [self._pending.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write_group(group)
            except BaseException as error:  # noqa: BLE001 - every waiter must wake, whatever happened
                for pending in group:
                    if not pending.done.is_set():
                        pending.error = error
                        pending.done.set()

    def _write_group(self, group: list[PendingJob]) -> None:
        stored = self._insert(group)
        if stored:
            published = self.publish([(p.row["id"], p.row["type"]) for p in stored])
            if not published:
                self._mark_unpublished([p.row["id"] for p in stored])
            for pending in stored:
                pending.published = published
        for pending in group:
            pending.done.set()

    def _insert(self, group: list[PendingJob]) -> list[PendingJob]:
        """The group's rows in one transaction; on a constraint violation, each row in its own."""
        try:
            self._execute_in_transaction([pending.row for pending in group])
            return group
        except IntegrityError:
            if len(group) == 1:
                raise
        stored = []
        for pending in group:
            try:
                self._execute_in_transaction([pending.row])
                stored.append(pending)
            except IntegrityError as error:
                pending.error = error
        return stored

    def _execute_in_transaction(self, rows: list[dict]) -> None:
        """The rows in one transaction on the writer's own connection, kept open between groups.

        Checking a connection out of the pool costs a round trip (the pre-ping) per group; the
        writer keeps one instead. On PostgreSQL the group is one multi-row INSERT statement
        (SQLAlchemy's insertmanyvalues, up to 1,000 rows), atomic by itself, so it runs in
        autocommit: one round trip instead of BEGIN, INSERT and COMMIT. If the connection broke
        (the database restarted), the error is raised for this group and the next group opens
        a new one: a group is never written twice.
        """
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection = self._connect()
        try:
            if self._single_statement:
                self._connection.execute(insert(Job), rows)
            else:
                with self._connection.begin():
                    self._connection.execute(insert(Job), rows)
        except DBAPIError as error:
            if error.connection_invalidated or not isinstance(error, IntegrityError):
                self._close_connection()
            raise

    @property
    def _single_statement(self) -> bool:
        dialect = self.engine.dialect
        return (dialect.name == "postgresql" and dialect.use_insertmanyvalues
                and MAX_GROUP <= dialect.insertmanyvalues_page_size)

    def _connect(self) -> Connection:
        connection = self.engine.connect()
        if self._single_statement:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
                log.debug("closing the writer's connection failed", exc_info=True)

    def _mark_unpublished(self, job_ids: list[uuid.UUID]) -> None:
        """The rows are committed either way: if this fails too, the stale-job sweep still finds them."""
        try:
            with self.engine.begin() as connection:
                connection.execute(update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=None))
        except Exception:  # noqa: BLE001
            log.warning("could not mark %d unpublished jobs", len(job_ids), exc_info=True)
