"""Engines and session factories, built once per process and database URL."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy import event, false, table, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


#: Connections per process, the same on both databases: each gunicorn worker thread's request, the
#: group-commit writer's own connection (kept between groups) and the API's background threads.
POOL_OPTIONS = {"pool_size": 10, "max_overflow": 20}
#: Statement parameters (input texts among them) never appear in SQLAlchemy's logs or in the
#: messages of its errors, which error handlers log.
PRIVACY_OPTIONS = {"hide_parameters": True}


def _create_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1] if "///" in database_url else ""
        in_memory = path in ("", ":memory:")
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sqlalchemy.create_engine(database_url, connect_args={"timeout": 30}, **PRIVACY_OPTIONS,
                                          **({} if in_memory else POOL_OPTIONS))
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    # Through the module: with tracing on (config.tracing), the SQLAlchemy instrumentation wraps
    # `sqlalchemy.create_engine` after this module was imported.
    return sqlalchemy.create_engine(database_url, pool_pre_ping=True, **PRIVACY_OPTIONS, **POOL_OPTIONS)


def get_engine(database_url: str) -> Engine:
    if database_url not in _engines:
        _engines[database_url] = _create_engine(database_url)
    return _engines[database_url]


def get_sessionmaker(database_url: str) -> sessionmaker[Session]:
    if database_url not in _sessionmakers:
        _sessionmakers[database_url] = sessionmaker(bind=get_engine(database_url), expire_on_commit=False)
    return _sessionmakers[database_url]


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = get_sessionmaker(database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lock_sqlite_for_writing(session: Session) -> None:
    """On SQLite, take the database's write lock now, held until the session's transaction ends.

    pysqlite begins a transaction only at a transaction's first write, so the reads before it
    lock nothing: two transactions could both read, decide and then write. A write that matches
    no row begins the transaction and takes the lock (waiting, up to the busy timeout, for the
    transaction holding it), and the reads after it see the latest commit. This stands in for
    PostgreSQL's row and advisory locks; elsewhere it does nothing.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(table("tenants").delete().where(false()))


def dispose_engines() -> None:
    """Forget pooled connections inherited over fork: a child must open its own sockets."""
    for engine in _engines.values():
        engine.dispose(close=False)


def ping(database_url: str) -> None:
    """One round trip on a pooled connection; raises what the database raised."""
    with get_engine(database_url).connect() as connection:
        connection.execute(text("SELECT 1"))
