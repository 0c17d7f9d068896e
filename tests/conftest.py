"""Fixtures for the app, the database, the broker and real worker processes.

Integration tests run against the real Redis server and real Celery workers, and against the
database ``--database`` (or ``SAMO_TEST_DATABASE``) names: the real PostgreSQL server (the
default) or a SQLite file in WAL mode, as ``make run`` uses it. Each session gets its own
database and Redis database number (tests/support/services.py).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from pathlib import Path

import pytest
import redis as redis_lib

from config.settings import Settings, parse_tiers
from tests.support.services import DATABASES, claimed_redis_database, temporary_database, temporary_sqlite_database
from tests.support.tenants import new_tenant

TEST_JWT_SECRET = "test-jwt-secret-" + uuid.uuid4().hex
INTEGRATION_DIR = Path(__file__).parent / "integration"
UNTHROTTLED_CREDENTIALS = {"token_requests_per_address": 0, "token_requests_per_key": 0, "failed_auth_limit": 0}
#: Fixtures that reach the real PostgreSQL or Redis, or start what does (servers, workers, stacks).
SERVICE_FIXTURES = frozenset({
    "database_url", "redis_url", "settings", "app", "client", "db_session", "redis", "make_tenant",
    "live_server", "cpu_worker", "batching_stack",
})


def pytest_addoption(parser):
    parser.addoption(
        "--database", choices=DATABASES, default=os.environ.get("SAMO_TEST_DATABASE", "postgresql"),
        help="the database the session's tests run on (default: $SAMO_TEST_DATABASE or postgresql)",
    )


def pytest_configure(config):
    if config.getoption("database") not in DATABASES:
        raise pytest.UsageError(f"--database / SAMO_TEST_DATABASE: one of {', '.join(DATABASES)}")


def pytest_report_header(config):
    return f"database: {config.getoption('database')}"


def pytest_collection_modifyitems(config, items):
    """Mark what needs the servers, so ``-m "not services"`` runs anywhere without remembering a marker,
    and skip the PostgreSQL-only tests on a SQLite session, with their reason.

    ``fixturenames`` is the closure over every fixture a test pulls in, so a fixture built on
    ``settings`` (a worker, an app of its own) marks its tests too.
    """
    database = config.getoption("database")
    for item in items:
        if SERVICE_FIXTURES.intersection(item.fixturenames) or INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.services)
        marker = item.get_closest_marker("postgresql_only")
        if marker and database != "postgresql":
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "needs PostgreSQL")
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL only: {reason}"))


@pytest.fixture(scope="session")
def database_url(pytestconfig, tmp_path_factory):
    """A migrated database of this session's own, on the database ``--database`` names."""
    from db.migrate import upgrade_to_head

    if pytestconfig.getoption("database") == "sqlite":
        database = temporary_sqlite_database(tmp_path_factory.mktemp("sqlite"))
    else:
        database = temporary_database()
    with database as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture(scope="session")
def redis_url():
    with claimed_redis_database() as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url, redis_url, tmp_path_factory) -> Settings:
    return dataclasses.replace(
        Settings(),
        database_url=database_url,
        redis_url=redis_url,
        media_dir=str(tmp_path_factory.mktemp("media")),
        jwt_secret=TEST_JWT_SECRET,
        broker_visibility_timeout_s=int(os.environ.get("SAMO_TEST_VISIBILITY_TIMEOUT_S", "8")),
        rate_limit_tiers=parse_tiers("free=1000/60/1000,tiny=3/60/1000,oneflight=1000/60/1"),
        # Every test client calls from one address: the throttles on credentials are tested with
        # their own limits (tests/api/test_credential_throttles.py).
        **UNTHROTTLED_CREDENTIALS,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process (worker, gunicorn) read the same settings."""
    tiers = ",".join(
        f"{t.name}={t.requests}/{t.window_s}/{t.max_jobs_in_flight}" for t in settings.rate_limit_tiers.values()
    )
    return {
        "SAMO_DATABASE_URL": settings.database_url,
        "SAMO_REDIS_URL": settings.redis_url,
        "SAMO_JWT_SECRET": settings.jwt_secret,
        "SAMO_BROKER_VISIBILITY_TIMEOUT_S": str(settings.broker_visibility_timeout_s),
        "SAMO_RATE_LIMIT_TIERS": tiers,
        "SAMO_EMOTION_INT8": "true" if settings.emotion_int8 else "false",
        "SAMO_EMOTION_ENGINE": settings.emotion_engine,
        "SAMO_MEDIA_DIR": settings.media_dir,
        "SAMO_TOKEN_REQUESTS_PER_ADDRESS": str(settings.token_requests_per_address),
        "SAMO_TOKEN_REQUESTS_PER_KEY": str(settings.token_requests_per_key),
        "SAMO_FAILED_AUTH_LIMIT": str(settings.failed_auth_limit),
    }


@pytest.fixture(scope="session")
def services(settings):
    """The task layer's clients for code run in the test process (events, webhook emits)."""
    from tasks.services import Services

    return Services(settings)


@pytest.fixture(scope="session")
def app(settings):
    from api import create_app

    return create_app(settings, {"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(settings):
    from db.session import get_sessionmaker

    session = get_sessionmaker(settings.database_url)()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def redis(redis_url):
    return redis_lib.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def make_tenant(settings):
    """Each test gets tenants of its own, so tests never see each other's jobs or limits."""
    return functools.partial(new_tenant, settings.database_url)


@pytest.fixture(scope="session")
def live_server(app):
    """The app served over real HTTP on a loopback port."""
    from tests.support.processes import serve_app_in_thread

    with serve_app_in_thread(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def cpu_worker(settings):
    """A real Celery worker consuming the `cpu` queue, with the real emotion model."""
    from tests.support.processes import CeleryWorker

    worker = CeleryWorker(settings_env(settings), queues=("cpu",))
    worker.start()
    yield worker
    worker.stop()
