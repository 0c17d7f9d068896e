"""The session runs on the database ``--database`` names (tests/conftest.py): the app, the test's own
sessions and the environment of child processes (workers, gunicorn) alike; SQLite in WAL mode, as
``make run`` opens it."""
from __future__ import annotations

from sqlalchemy import text

from tests.conftest import settings_env


def test_the_app_and_child_processes_use_the_database_asked_for(pytestconfig, app, settings, db_session):
    asked = pytestconfig.getoption("database")
    assert app.config["SAMO_SETTINGS"].database_url == settings.database_url
    assert settings_env(settings)["SAMO_DATABASE_URL"] == settings.database_url
    assert db_session.get_bind().dialect.name == asked
    if asked == "sqlite":
        assert db_session.scalar(text("PRAGMA journal_mode")) == "wal"
