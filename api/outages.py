"""Which errors mean that a dependency is down: the request answers 503 and the client retries.

A request fails this way when the database or Redis cannot be reached, or drops the connection,
whichever code path met it first (authentication, a view, the group-commit writer, which hands
its group's error to each request of the group unchanged). The error is looked for in the
chain of causes too, since libraries re-raise connection errors as their own (kombu wraps
redis-py's, SQLAlchemy wraps the driver's). Redis failures that do not stop a request, such as
the rate limiter's, are handled where they happen and never get here.
"""
from __future__ import annotations

import sqlite3

import psycopg2
import redis
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy import exc as sqlalchemy_errors

DATABASE = "database"
REDIS = "redis"
BROKER = "broker"

_DEPENDENCY_ERRORS: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    (DATABASE, (
        sqlalchemy_errors.OperationalError, sqlalchemy_errors.InterfaceError, sqlalchemy_errors.DisconnectionError,
        sqlalchemy_errors.TimeoutError, psycopg2.OperationalError, psycopg2.InterfaceError,
        sqlite3.OperationalError, sqlite3.InterfaceError,
    )),
    (REDIS, (redis.ConnectionError, redis.TimeoutError)),
    (BROKER, (BrokerOperationalError,)),
)
_MAX_CHAIN = 16


def _causes(error: BaseException):
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def unavailable_dependency(error: BaseException) -> tuple[str, BaseException] | None:
    """The dependency that ``error`` says is down and the error that says so, or ``None``."""
    for cause in _causes(error):
        for dependency, classes in _DEPENDENCY_ERRORS:
            if isinstance(cause, classes):
                return dependency, cause
    return None


def describe(error: BaseException) -> str:
    """The failure for the log: the driver's own message, never SQLAlchemy's, which quotes the
    statement's parameters (job text)."""
    if isinstance(error, sqlalchemy_errors.DBAPIError) and error.orig is not None:
        error = error.orig
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}"[:300]
