"""Which errors count as a dependency being down (``api.outages``): the classes and their chains of causes."""
from __future__ import annotations

import sqlite3

import psycopg2
import pytest
import redis
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy import exc as sqlalchemy_errors

from api.outages import describe, unavailable_dependency


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:  # noqa: BLE001
        return raised


def wrapped(orig: BaseException, statement: str = "INSERT INTO jobs VALUES (%(text)s)",
            params=None) -> sqlalchemy_errors.DBAPIError:
    return sqlalchemy_errors.DBAPIError.instance(statement, params or {"text": "secret job text"}, orig,
                                                 psycopg2.Error)


@pytest.mark.parametrize(("error", "dependency"), [
    (wrapped(psycopg2.OperationalError("connection refused")), "database"),
    (wrapped(psycopg2.InterfaceError("connection already closed")), "database"),
    (sqlalchemy_errors.DisconnectionError("gone"), "database"),
    (sqlalchemy_errors.TimeoutError("QueuePool limit reached"), "database"),
    (sqlite3.OperationalError("unable to open database file"), "database"),
    (redis.ConnectionError("Error 111 connecting"), "redis"),
    (redis.TimeoutError("Timeout reading from socket"), "redis"),
    (raised_from(BrokerOperationalError("Error 111"), redis.ConnectionError("Error 111")), "broker"),
    (BrokerOperationalError("connection refused"), "broker"),
    (raised_from(RuntimeError("while storing"), psycopg2.OperationalError("server closed the connection")),
     "database"),
])
def test_outages_name_their_dependency(error, dependency):
    found = unavailable_dependency(error)
    assert found is not None and found[0] == dependency


@pytest.mark.parametrize("error", [
    ValueError("bad"),
    wrapped(psycopg2.IntegrityError("duplicate key")),
    redis.ResponseError("NOSCRIPT"),
    raised_from(KeyError("x"), ValueError("y")),
])
def test_other_errors_are_not_outages(error):
    assert unavailable_dependency(error) is None


def test_a_cycle_of_causes_ends():
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert unavailable_dependency(first) is None


def test_the_log_line_quotes_the_driver_not_the_statement_parameters():
    line = describe(wrapped(psycopg2.OperationalError("connection to server failed\nIs the server running?")))
    assert line == "OperationalError: connection to server failed"
    assert "secret job text" not in line
