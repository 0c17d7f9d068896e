"""Both databases get the same connection pool: each app's group-commit writer keeps a connection
of its own, so a small SQLite pool ran dry where PostgreSQL's did not."""
from __future__ import annotations

from db.session import POOL_OPTIONS, _create_engine


def test_a_sqlite_file_and_postgresql_pool_the_same_number_of_connections(tmp_path):
    sqlite = _create_engine(f"sqlite:///{tmp_path / 'samo.db'}")
    postgresql = _create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/none")
    for engine in (sqlite, postgresql):
        assert engine.pool.size() == POOL_OPTIONS["pool_size"]
        assert engine.pool._max_overflow == POOL_OPTIONS["max_overflow"]
        engine.dispose()


def test_an_in_memory_sqlite_database_keeps_its_single_connection_pool():
    engine = _create_engine("sqlite://")
    assert type(engine.pool).__name__ == "SingletonThreadPool"
    engine.dispose()
