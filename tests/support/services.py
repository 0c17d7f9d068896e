"""Per-session isolation on the shared PostgreSQL and Redis servers.

Several test sessions (developers, CI) may share one machine: each session gets its own
PostgreSQL database (or SQLite file) and claims a free Redis database number, so their workers
never take each other's messages.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ADMIN_DATABASE_URL = os.environ.get(
    "SAMO_TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
REDIS_SERVER_URL = os.environ.get("SAMO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_LOCK_KEY = "samo:test-db-lock:{}"
#: The databases a test session can run on (``pytest --database``).
DATABASES = ("postgresql", "sqlite")


@contextmanager
def temporary_database() -> Iterator[str]:
    admin_url = make_url(ADMIN_DATABASE_URL)
    name = f"samo_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        from db.session import get_engine

        get_engine(admin_url.set(database=name).render_as_string(hide_password=False)).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def temporary_sqlite_database(folder: Path) -> Iterator[str]:
    """A SQLite file in ``folder``; ``db.session`` opens it in WAL mode, as ``make run`` does."""
    url = f"sqlite:///{folder / 'samo.db'}"
    try:
        yield url
    finally:
        from db.session import get_engine

        get_engine(url).dispose()


@contextmanager
def claimed_redis_database() -> Iterator[str]:
    control = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0")
    token = uuid.uuid4().hex
    for number in range(1, 16):
        if control.set(REDIS_LOCK_KEY.format(number), token, nx=True, ex=4 * 3600):
            break
    else:
        raise RuntimeError("no free Redis database for this test session (1..15 all claimed)")
    url = f"{REDIS_SERVER_URL}/{number}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        if control.get(REDIS_LOCK_KEY.format(number)) == token.encode():
            control.delete(REDIS_LOCK_KEY.format(number))
