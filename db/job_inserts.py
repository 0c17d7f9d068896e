"""Writing new job rows in groups on a connection the caller holds (the API's group-commit writer).

A group is one statement: on PostgreSQL one ``INSERT ... SELECT`` of a JSON array
(:class:`RecordsetInsert`), elsewhere an executemany ``INSERT``.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime

import orjson
from sqlalchemy import Connection, insert, update

from db.models import Job


def _json_scalar(value: object) -> str:
    """What ``json.dumps`` does not know in a job row: UUIDs and timestamps, in the text forms
    PostgreSQL's ``uuid`` and ``timestamptz`` read (and orjson writes)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a job row")


class RecordsetInsert:
    """A group of job rows as one ``INSERT ... SELECT ... FROM json_populate_recordset(NULL::jobs, %s)``.

    The whole group is one parameter, a JSON array of the rows (:meth:`parameter`),
    which PostgreSQL reads into records of the table's own row type: each value goes through its
    column type's input function (uuid, timestamptz, the ``job_status`` enum, jsonb), as a typed
    literal would. A ``VALUES`` list with a bind parameter per column instead has psycopg2 adapt
    and quote every value, which costs more client and backend CPU than reading one JSON
    document. Errors are those of any statement (``IntegrityError`` for a duplicate key).
    PostgreSQL only.
    """

    def __init__(self, dialect) -> None:
        columns = Job.__table__.columns
        if any(column.key != column.name for column in columns):
            raise ValueError("json_populate_recordset matches JSON keys to column names: a row's keys must be them")
        names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
        table = dialect.identifier_preparer.format_table(Job.__table__)
        self.statement = f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s)"

    @staticmethod
    def parameter(rows: list[dict]) -> str:
        """The rows as one JSON array: orjson writes UUIDs, timestamps (RFC 3339) and the status
        enum itself; what it refuses (an integer beyond 64 bits in a job's options) goes to the stdlib."""
        try:
            return orjson.dumps(rows).decode()
        except orjson.JSONEncodeError:
            return json.dumps(rows, default=_json_scalar)

    def execute(self, connection: Connection, rows: list[dict]) -> None:
        connection.exec_driver_sql(self.statement, (self.parameter(rows),))


def insert_job_rows(connection: Connection, rows: list[dict]) -> None:
    """The rows (every column, keyed by name) with one executemany INSERT, in the caller's transaction."""
    connection.execute(insert(Job), rows)


def mark_rows_unpublished(connection: Connection, job_ids: list[uuid.UUID]) -> None:
    """Clear ``enqueued_at`` of jobs whose message did not go out, so the requeue sweep sends them."""
    connection.execute(update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=None))
