"""Group commit for job submissions: concurrent submissions in one API process share their writes.

A request thread hands its ready job row to the process's writer and waits
(``api.fastpath.coalescing``). The writer thread takes every row waiting at that moment, inserts them
with one statement in one transaction, then publishes their broker messages in one Redis round
trip (kombu's producer batch; emotion jobs share messages, ``tasks.enqueue``), and wakes the
waiting threads. N submissions arriving together cost one INSERT, one COMMIT and one
publish instead of N of each; a lone submission waits for nothing, since the writer starts as
soon as a row arrives (there is no timer to fill a group).

The guarantees of the one-row path stay: a request is answered 202 only after its row is
committed; a row whose message could not be published is marked unpublished (the requeue sweep
sends it); a row that violates a constraint (a reused ``Idempotency-Key`` raced by another
request) fails alone: the group is written again row by row and only that request sees the
``IntegrityError``. Submissions that write more than their job row (a webhook subscription, an
uploaded file) keep the request's own transaction (``api.views.jobs``).
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from api.fastpath.coalescing import Coalescer
from config import tracing
from db.job_inserts import RecordsetInsert, insert_job_rows, mark_rows_unpublished
from tasks.enqueue import OutgoingJob, model_of, text_chars

log = logging.getLogger(__name__)

#: Rows per INSERT; a larger wave is written in several groups.
MAX_GROUP = 256


class JobWriter:
    """One per API process; ``write`` is called from request threads."""

    def __init__(self, engine: Engine, publish: Callable[[list[tuple]], bool]) -> None:
        self.engine = engine
        self.publish = publish
        #: Each waiting row's trace context (with tracing on), for its message: the group is published
        #: from the writer's thread, outside the requests' traces.
        self._traces: dict[uuid.UUID, dict[str, str]] = {}
        self._groups: Coalescer[dict, bool] = Coalescer(self._write_group, "samo-job-writer", MAX_GROUP)
        self._connection: Connection | None = None
        self._recordset_insert = RecordsetInsert(engine.dialect) if engine.dialect.name == "postgresql" else None

    def write(self, row: dict) -> bool:
        """Commit a new job's row (every column, as ``api.views.jobs.new_job_row`` gives them) and publish its
        message; returns whether the message went out.

        Raises what the INSERT raised for this row (``IntegrityError`` for a duplicate key, or
        the database error that failed its group).
        """
        if (trace := tracing.carrier()) is not None:
            self._traces[row["id"]] = trace
        return self._groups.submit(row)

    def _write_group(self, rows: list[dict]) -> list[bool | BaseException]:
        traces = [self._traces.pop(row["id"], None) for row in rows] if self._traces else [None] * len(rows)
        failures = self._insert(rows)
        stored = [row for row, failure in zip(rows, failures) if failure is None]
        published = False
        if stored:
            published = self.publish([OutgoingJob(row["id"], row["type"], text_chars(row["input"]), trace,
                                                  model_of(row["options"]))
                                      for row, trace, failure in zip(rows, traces, failures) if failure is None])
            if not published:
                self._mark_unpublished([row["id"] for row in stored])
        return [published if failure is None else failure for failure in failures]

    def _insert(self, rows: list[dict]) -> list[IntegrityError | None]:
        """The group's rows in one transaction; on a constraint violation, each row in its own.

        Returns the constraint violation of each row that was not stored (None: stored).
        """
        try:
            self._execute_in_transaction(rows)
            return [None] * len(rows)
        except IntegrityError as error:
            if len(rows) == 1:
                return [error]
        failures: list[IntegrityError | None] = []
        for row in rows:
            try:
                self._execute_in_transaction([row])
                failures.append(None)
            except IntegrityError as error:
                failures.append(error)
        return failures

    def _execute_in_transaction(self, rows: list[dict]) -> None:
        """The rows in one transaction on the writer's own connection, kept open between groups.

        Checking a connection out of the pool costs a round trip (the pre-ping) per group; the
        writer keeps one instead. On PostgreSQL the group is one multi-row INSERT statement
        (:class:`RecordsetInsert`), atomic by itself, so it runs in autocommit: one round trip
        instead of BEGIN, INSERT and COMMIT. If the connection broke (the database restarted),
        the error is raised for this group and the next group opens a new one: a group is never
        written twice.
        """
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection = self._connect()
        try:
            if self._recordset_insert is not None:
                self._recordset_insert.execute(self._connection, rows)
            else:
                with self._connection.begin():
                    insert_job_rows(self._connection, rows)
        except DBAPIError as error:
            if error.connection_invalidated or not isinstance(error, IntegrityError):
                self._close_connection()
            raise

    def _connect(self) -> Connection:
        connection = self.engine.connect()
        if self._recordset_insert is not None:
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
                mark_rows_unpublished(connection, job_ids)
        except Exception:  # noqa: BLE001
            log.warning("could not mark %d unpublished jobs", len(job_ids), exc_info=True)
